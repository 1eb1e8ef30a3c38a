import AVMAE
import Foundation
import XCTest

/// Several bundles in one daemon: a model repository folder plus a named bundle, each with its own version;
/// requests pick a model by name; SIGHUP rescans the repository one model at a time.
final class ModelRepositoryTests: XCTestCase {
    /// repo/alpha and repo/beta (different weights), plus `--bundle named=DIR` (alpha's weights again). The folder
    /// is removed when the test ends.
    private func start(settings: [String: String] = [:], repository: (URL) throws -> Void = { _ in }) throws
        -> (RunningDaemon, URL) {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-repo-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: scratch) }
        let root = scratch.appendingPathComponent("repo")
        try DemoBundle.write(to: root.appendingPathComponent("alpha"), seed: 1)
        try DemoBundle.write(to: root.appendingPathComponent("beta"), seed: 2)
        try "not a bundle".write(to: root.appendingPathComponent("README.txt"), atomically: true, encoding: .utf8)
        let named = scratch.appendingPathComponent("elsewhere")
        try DemoBundle.write(to: named, seed: 1)
        try repository(root)
        let daemon = try RunningDaemon(settings: settings,
                                       models: ["--model-repository", root.path, "--bundle", "named=\(named.path)"])
        return (daemon, root)
    }

    private func models(_ daemon: RunningDaemon) throws -> [String: [String: Any]] {
        let list = try Curl.run(port: daemon.port, path: "/v1/models").json["models"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "?", $0) })
    }

    private func classify(_ daemon: RunningDaemon, model: String?) throws -> Curl.Response {
        let query = model.map { "?model=\($0)" } ?? ""
        return try Curl.run(port: daemon.port, path: "/v1/classify\(query)", headers: ["Content-Type": "audio/wav"],
                            bodyFile: Fixture.tone)
    }

    func testEveryBundleIsServedWithItsVersionAndPickedByName() throws {
        let (daemon, root) = try start()
        let listed = try models(daemon)
        XCTAssertEqual(listed.keys.sorted(), ["alpha", "beta", "named"], "README.txt is no bundle")
        for (name, model) in listed {
            XCTAssertEqual(model["state"] as? String, "ready", name)
            XCTAssertEqual(model["placeholder_labels"] as? Bool, true, name)
            let version = model["version"] as? String ?? ""
            XCTAssertEqual(version.count, 12, name)
            XCTAssertTrue(version.allSatisfy(\.isHexDigit), version)
        }
        // The version follows the bytes, not the folder: the same weights under two names share it.
        XCTAssertEqual(listed["alpha"]?["version"] as? String, listed["named"]?["version"] as? String)
        XCTAssertNotEqual(listed["alpha"]?["version"] as? String, listed["beta"]?["version"] as? String)
        XCTAssertEqual(listed["alpha"]?["version"] as? String, try Self.independentVersion(root.appendingPathComponent("alpha")))

        var top: [String: String] = [:]
        for name in ["alpha", "beta", "named"] {
            let answer = try classify(daemon, model: name)
            XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
            XCTAssertEqual(answer.json["model"] as? String, name)
            XCTAssertEqual(answer.json["model_version"] as? String, listed[name]?["version"] as? String)
            top[name] = ((answer.json["labels"] as? [[String: Any]])?.first?["id"] as? String) ?? ""
        }
        XCTAssertEqual(top["alpha"], top["named"], "same weights, same answer")

        let unnamed = try classify(daemon, model: nil)
        XCTAssertEqual(unnamed.status, 400)
        XCTAssertEqual(unnamed.errorCode, "model_required")
        let unknown = try classify(daemon, model: "gamma")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.errorCode, "model_not_found")
        XCTAssertTrue(unknown.errorMessage.contains("alpha, beta, named"), unknown.errorMessage)

        XCTAssertEqual(try daemon.metric("avmae_model_ready{model=\"beta\"}"), 1)
        XCTAssertGreaterThanOrEqual(try daemon.metric("avmae_batch_size_count{model=\"alpha\"}"), 1)
    }

    func testDefaultModelAnswersUnnamedRequests() throws {
        let (daemon, _) = try start(settings: ["default_model": "beta"])
        let answer = try classify(daemon, model: nil)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.json["model"] as? String, "beta")
    }

    /// A broken folder fails alone: the others serve, /readyz is ready, and /v1/models says what is wrong.
    func testBrokenBundleFailsAloneAtStart() throws {
        let (daemon, _) = try start { root in
            let broken = root.appendingPathComponent("broken")
            try DemoBundle.write(to: broken, seed: 3)
            try Data("{}".utf8).write(to: broken.appendingPathComponent("model.safetensors"))
        }
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/readyz").status, 200)
        let broken = try models(daemon)["broken"] ?? [:]
        XCTAssertEqual(broken["state"] as? String, "failed")
        XCTAssertTrue((broken["error"] as? String ?? "").contains("model.safetensors"), "\(broken)")
        let answer = try classify(daemon, model: "broken")
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(try classify(daemon, model: "alpha").status, 200)
    }

    /// SIGHUP: a new folder loads, a removed one goes, a rewritten one reloads with a new version, an unchanged one
    /// keeps its service (no reload counted), and a broken rewrite leaves the old version serving.
    func testSighupRescansTheRepository() throws {
        let (daemon, root) = try start()
        let before = try models(daemon)
        try FileManager.default.removeItem(at: root.appendingPathComponent("beta"))
        try DemoBundle.write(to: root.appendingPathComponent("gamma"), seed: 4)
        try DemoBundle.write(to: root.appendingPathComponent("alpha"), seed: 5)
        kill(daemon.process.processIdentifier, SIGHUP)

        let deadline = Date(timeIntervalSinceNow: 60)
        var after = try models(daemon)
        while (after["gamma"]?["state"] as? String != "ready"
               || after["alpha"]?["version"] as? String == before["alpha"]?["version"] as? String
               || after["beta"] != nil), Date() < deadline {
            XCTAssertEqual(try Curl.run(port: daemon.port, path: "/readyz").status, 200)
            Thread.sleep(forTimeInterval: 0.2)
            after = try models(daemon)
        }
        XCTAssertEqual(after.keys.sorted(), ["alpha", "gamma", "named"], daemon.log)
        XCTAssertNotEqual(after["alpha"]?["version"] as? String, before["alpha"]?["version"] as? String)
        XCTAssertEqual(after["named"]?["version"] as? String, before["named"]?["version"] as? String)
        XCTAssertEqual(try classify(daemon, model: "gamma").status, 200)
        XCTAssertEqual(try classify(daemon, model: "beta").status, 404)
        XCTAssertEqual(try daemon.metric("avmae_model_reloads_total{result=\"ok\"}"), 2, "alpha and gamma only")

        // Now break alpha: the reload is refused and the version it had keeps serving, with the error shown.
        let serving = after["alpha"]?["version"] as? String
        try Data("{}".utf8).write(to: root.appendingPathComponent("alpha/model.safetensors"))
        kill(daemon.process.processIdentifier, SIGHUP)
        let refusedBy = Date(timeIntervalSinceNow: 60)
        while try daemon.metric("avmae_model_reloads_total{model=\"alpha\",result=\"failed\"}") < 1, Date() < refusedBy {
            Thread.sleep(forTimeInterval: 0.2)
        }
        let alpha = try models(daemon)["alpha"] ?? [:]
        XCTAssertEqual(alpha["state"] as? String, "ready")
        XCTAssertEqual(alpha["version"] as? String, serving)
        XCTAssertTrue((alpha["error"] as? String ?? "").contains("model.safetensors"), "\(alpha)")
        let answer = try classify(daemon, model: "alpha")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.json["model_version"] as? String, serving)
    }

    /// The version rule of BundleDigest, computed here with Python's hashlib so the test does not share code with it.
    private static func independentVersion(_ bundle: URL) throws -> String {
        let script = """
            import hashlib, os, struct, sys
            h = hashlib.sha256()
            for name in ("config.json", "labels.csv", "model.safetensors"):
                data = open(os.path.join(sys.argv[1], name), "rb").read()
                h.update(name.encode() + b"\\0" + struct.pack("<Q", len(data)) + data)
            print(h.hexdigest()[:12])
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, bundle.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
