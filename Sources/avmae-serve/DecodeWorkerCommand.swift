import ArgumentParser
import DecodeIsolation

/// `avmae-serve decode-worker`: the daemon starts this itself (posix_spawn of /proc/self/exe) for each decode
/// worker; it is not for people, so help does not list it. `--probe NAME` enters the same sandbox, tries one
/// forbidden thing and prints what happened (the sandbox tests use it).
struct DecodeWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-worker", abstract: "Internal: one sandboxed decode worker.", shouldDisplay: false)

    @Option(help: "RLIMIT_DATA in bytes.") var memoryBytes: Int
    @Option(help: "Try one forbidden thing inside the sandbox and print the outcome.") var probe: SandboxProbe?

    func run() throws {
        if let probe {
            print(try probe.run(memoryBytes: memoryBytes))
            return
        }
        try DecodeWorker.run(memoryBytes: memoryBytes)
    }
}

extension SandboxProbe: ExpressibleByArgument {}
