import Foundation
import XCTest

/// Paths and child processes the deploy tests share.
enum Commands {
    /// The checkout this test file belongs to (Tests/DeployTests/Support/Commands.swift -> four levels up).
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The release binary: $AVMAE_SERVE_BIN (Tests/run.sh sets it), else the one beside this test bundle.
    static func avmaeServe() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let beside = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("avmae-serve")
        guard FileManager.default.isExecutableFile(atPath: beside.path) else {
            throw XCTSkip("no avmae-serve binary: build it (swift build -c release --product avmae-serve) or set AVMAE_SERVE_BIN")
        }
        return beside
    }

    struct Result {
        let status: Int32
        let output: String
    }

    /// Runs a command to completion with stdout and stderr merged.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }

    /// HTTP status of GET `path` on loopback, or 0 when no answer came within `timeout` seconds.
    static func httpStatus(port: Int, path: String, timeout: Double = 5) throws -> Int {
        let result = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}",
                                               "--max-time", "\(timeout)", "http://127.0.0.1:\(port)\(path)"])
        return Int(result.output) ?? 0
    }

    /// A scratch folder, removed when the test ends.
    static func scratch(_ test: XCTestCase) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-deploy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }
}
