import Foundation

/// The avmae-serve executable the workers run: $AVMAE_SERVE_BIN (Tests/run.sh sets it), else the one next to this
/// test bundle.
enum WorkerBinary {
    static var path: String {
        get throws {
            if let path = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"], !path.isEmpty { return path }
            let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let candidate = testBinary.deletingLastPathComponent().appendingPathComponent("avmae-serve").path
            guard FileManager.default.isExecutableFile(atPath: candidate) else {
                throw Missing(message: "build it first (swift build --product avmae-serve) or set AVMAE_SERVE_BIN")
            }
            return candidate
        }
    }

    struct Missing: Error { var message: String }

    enum Ending: Equatable {
        case exited(Int32, output: String)
        case signalled(Int32)
    }

    /// Runs `decode-worker --probe NAME` and says how it ended.
    static func probe(_ name: String) throws -> Ending {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path)
        process.arguments = ["decode-worker", "--memory-bytes", "\(256 << 20)", "--probe", name]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return .signalled(process.terminationStatus) }
        return .exited(process.terminationStatus, output: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
