import AVMAE
import Foundation
import XCTest

/// SIGHUP reloads the bundle from the same path on a real daemon: the new model serves without dropping a
/// request, a broken bundle is refused while the old model keeps serving, and a broken bundle at start-up
/// shows on /readyz.
final class ReloadTests: XCTestCase {
    /// Every classify sent while the reload runs is answered 200 (by the old model or the new one), /readyz
    /// never leaves 200, and afterwards /v1/models names the new bundle.
    func testReloadSwapsTheModelWithoutDroppingRequests() throws {
        let daemon = try RunningDaemon()
        let before = try Curl.run(port: daemon.port, path: "/v1/models")
        XCTAssertEqual(modelName(before), "avmae-demo")

        var renamed = DemoBundle.config()
        renamed.name = "avmae-demo-reloaded"
        try replaceBundle(daemon.bundle) { try DemoBundle.write(to: $0, config: renamed, seed: 8) }

        let traffic = Traffic(port: daemon.port)
        traffic.start(clients: 4)
        Thread.sleep(forTimeInterval: 0.5)
        kill(daemon.process.processIdentifier, SIGHUP)
        let deadline = Date(timeIntervalSinceNow: 60)
        var current = "avmae-demo"
        while current != "avmae-demo-reloaded", Date() < deadline {
            current = modelName(try Curl.run(port: daemon.port, path: "/v1/models")) ?? ""
            XCTAssertEqual(try Curl.run(port: daemon.port, path: "/readyz").status, 200, "/readyz left 200 during reload")
        }
        Thread.sleep(forTimeInterval: 0.5)  // some requests on the new model too
        let statuses = traffic.stop()

        XCTAssertEqual(current, "avmae-demo-reloaded", "reload did not take effect; log:\n\(daemon.log)")
        XCTAssertGreaterThan(statuses.count, 4)
        XCTAssertEqual(statuses.filter { $0 != 200 }, [], "requests during the reload were not all answered 200")
        XCTAssertEqual(try daemon.metric("avmae_model_reloads_total{result=\"ok\"}"), 1)
        XCTAssertTrue(daemon.log.contains("previous model retired"), daemon.log)
    }

    /// A truncated model.safetensors at SIGHUP: the reload is refused with an error line naming the file, and
    /// the old model answers as before.
    func testCorruptBundleAtReloadKeepsTheOldModel() throws {
        let daemon = try RunningDaemon()
        let weights = daemon.bundle.appendingPathComponent("model.safetensors")
        try replaceFile(weights, with: try truncated(weights))
        kill(daemon.process.processIdentifier, SIGHUP)

        let deadline = Date(timeIntervalSinceNow: 30)
        while !daemon.log.contains("model reload failed"), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let line = daemon.log.split(separator: "\n").first { $0.contains("model reload failed") } ?? ""
        XCTAssertTrue(line.contains("error"), "not logged at level error: \(line)")
        XCTAssertTrue(line.contains("model.safetensors") && line.contains("truncated"), "log does not name the problem: \(line)")

        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/readyz").status, 200)
        XCTAssertEqual(modelName(try Curl.run(port: daemon.port, path: "/v1/models")), "avmae-demo")
        let classify = try Curl.run(port: daemon.port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                    bodyFile: Fixture.tone)
        XCTAssertEqual(classify.status, 200)
        XCTAssertEqual(try daemon.metric("avmae_model_reloads_total{result=\"failed\"}"), 1)
        XCTAssertEqual(try daemon.metric("avmae_model_reloads_total{result=\"ok\"}"), 0)
    }

    /// The same file broken before start: /readyz answers 503 load_failed and says why.
    func testCorruptBundleAtStartIsLoadFailed() throws {
        let daemon = try RunningDaemon(waitForReady: false) { bundle in
            let weights = bundle.appendingPathComponent("model.safetensors")
            try self.replaceFile(weights, with: try self.truncated(weights))
        }
        let deadline = Date(timeIntervalSinceNow: 30)
        var response = try Curl.run(port: daemon.port, path: "/readyz")
        while (response.json["reason"] as? String) != "load_failed", Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            response = try Curl.run(port: daemon.port, path: "/readyz")
        }
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.json["reason"] as? String, "load_failed")
        let message = response.json["message"] as? String ?? ""
        XCTAssertTrue(message.contains("model.safetensors") && message.contains("truncated"), message)
    }

    // MARK: Helpers

    private func modelName(_ response: Curl.Response) -> String? {
        (response.json["models"] as? [[String: Any]])?.first?["name"] as? String
    }

    /// The first half of `file`, in a temporary file.
    private func truncated(_ file: URL) throws -> URL {
        let data = try Data(contentsOf: file)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("truncated-\(UUID().uuidString)")
        try data.prefix(data.count / 2).write(to: url)
        return url
    }

    /// Swaps `file` for `replacement` by rename, the way to update a bundle under a running daemon: the old
    /// model maps the old inode, which stays intact until it is unmapped.
    private func replaceFile(_ file: URL, with replacement: URL) throws {
        guard rename(replacement.path, file.path) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
    }

    /// Writes a new bundle beside `bundle` with `write`, then renames each of its files over the old one.
    private func replaceBundle(_ bundle: URL, write: (URL) throws -> Void) throws {
        let staging = bundle.deletingLastPathComponent().appendingPathComponent("staging-\(UUID().uuidString)")
        try write(staging)
        for name in try FileManager.default.contentsOfDirectory(atPath: staging.path) {
            try replaceFile(bundle.appendingPathComponent(name), with: staging.appendingPathComponent(name))
        }
    }
}

/// Clients sending classify requests back to back until stopped; collects every status.
private final class Traffic: @unchecked Sendable {
    private let port: Int
    private let lock = NSLock()
    private var statuses: [Int] = []  // guarded by lock
    private var running = true  // guarded by lock
    private let group = DispatchGroup()

    init(port: Int) { self.port = port }

    func start(clients: Int) {
        for _ in 0..<clients {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while lock.withLock({ running }) {
                    let status = (try? Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                                bodyFile: Fixture.tone).status) ?? -1
                    lock.withLock { statuses.append(status) }
                }
            }
        }
    }

    func stop() -> [Int] {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { statuses }
    }
}
