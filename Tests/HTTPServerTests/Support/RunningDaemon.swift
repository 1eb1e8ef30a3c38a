import AVMAE
import Foundation
import XCTest

/// A real `avmae-serve serve` process on an ephemeral loopback port, serving a freshly written demo bundle.
/// The binary is $AVMAE_SERVE_BIN (Tests/run.sh sets it), else the one next to this test bundle.
final class RunningDaemon {
    let port: Int
    let bundle: URL
    let process: Process
    private let scratch: URL
    let stderrFile: URL
    /// Set when the daemon serves HTTPS: the certificate clients must trust.
    let certificate: URL?

    /// Starts the daemon and waits until /readyz says ready (unless `waitForReady` is false). `prepare` may
    /// change the bundle folder before the daemon reads it. `environment` adds to (or, with "", removes from)
    /// the test's own environment. `models`, when given, replaces `--bundle <the demo bundle>` (the test lays out
    /// those bundles itself).
    init(settings: [String: String] = [:], environment: [String: String] = [:],
         config: ModelConfig = DemoBundle.config(), waitForReady: Bool = true,
         readyTimeout: Double = 120, certificate: URL? = nil, models: [String]? = nil,
         prepare: (URL) throws -> Void = { _ in }) throws {
        self.certificate = certificate
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-http-\(UUID().uuidString)")
        bundle = scratch.appendingPathComponent("bundle")
        try DemoBundle.write(to: bundle, config: config, seed: 7)
        try prepare(bundle)
        stderrFile = scratch.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let stdoutPipe = Pipe()
        process = Process()
        process.executableURL = try Self.binary()
        var arguments = ["serve"] + (models ?? ["--bundle", bundle.path])
        arguments += ["--host", "127.0.0.1", "--port", "0"]
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { arguments += ["--set", "\(key)=\(value)"] }
        process.arguments = arguments
        process.environment = Self.environment(adding: environment)
        process.standardOutput = stdoutPipe
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        port = try Self.readPort(from: stdoutPipe.fileHandleForReading)
        if waitForReady { try waitUntilReady(timeout: readyTimeout) }
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: scratch)
    }

    var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    func waitUntilReady(timeout: Double) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let response = try? Curl.run(port: port, path: "/readyz", trusting: certificate), response.status == 200 {
                return
            }
            guard process.isRunning else { throw DaemonError.exited(log) }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw DaemonError.notReady(log)
    }

    /// The sum of the samples of a Prometheus series from /metrics whose labels include the given ones, e.g.
    /// `avmae_batch_size_count` (every model) or `avmae_rejected_total{reason="deadline"}`.
    func metric(_ series: String) throws -> Double {
        let text = String(decoding: try Curl.run(port: port, path: "/metrics").body, as: UTF8.self)
        let (name, wanted) = Self.sample(series)
        var sum = 0.0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let (lineName, labels) = Self.sample(String(line[..<space]))
            if lineName == name, wanted.isSubset(of: labels) { sum += Double(line[line.index(after: space)...]) ?? .nan }
        }
        return sum
    }

    /// `name{a="1",b="2"}` -> ("name", ["a=\"1\"", "b=\"2\""]); label values here never hold commas.
    private static func sample(_ series: String) -> (String, Set<String>) {
        guard let brace = series.firstIndex(of: "{") else { return (series, []) }
        let labels = series[series.index(after: brace)...].dropLast().split(separator: ",").map(String.init)
        return (String(series[..<brace]), Set(labels))
    }

    func terminateAndWait() -> Int32 {
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        return process.terminationStatus
    }

    enum DaemonError: Error {
        case noBinary(String)
        case noPort
        case exited(String)
        case notReady(String)
    }

    /// This process's environment with `changes` applied; an empty value removes the variable.
    static func environment(adding changes: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in changes { environment[name] = value.isEmpty ? nil : value }
        return environment
    }

    static func binary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        // Tests run as <build>/<config>/avmae-servePackageTests.xctest; the executable sits beside it.
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidate = testBinary.deletingLastPathComponent().appendingPathComponent("avmae-serve")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        throw DaemonError.noBinary("build it first (swift build --product avmae-serve) or set AVMAE_SERVE_BIN")
    }

    /// The daemon prints "avmae-serve listening on http(s)://HOST:PORT" on stdout once it listens.
    private static func readPort(from handle: FileHandle) throws -> Int {
        var buffer = Data()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { throw DaemonError.noPort }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on http") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                return port
            }
        }
    }
}
