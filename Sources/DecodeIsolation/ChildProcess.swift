import CLinux
import Glibc
import SystemIntegration

/// A child process started with posix_spawn, holding exactly the descriptors it was given.
///
/// posix_spawn (vfork-style clone + exec) is safe in a multithreaded parent, where fork is not. The child gets
/// default signal handling and an empty signal mask: the daemon ignores SIGTERM/SIGHUP and blocks others for its
/// Dispatch signal sources, and a child would inherit both.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private var reaped: Termination?

    /// How a child ended.
    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let code): return "exited with status \(code)"
            case .signalled(let signal): return "killed by \(Self.name(signal))"
            }
        }

        static func name(_ signal: Int32) -> String {
            let names: [Int32: String] = [SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS",
                                          SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGXCPU: "SIGXCPU", SIGSYS: "SIGSYS",
                                          SIGFPE: "SIGFPE", SIGTERM: "SIGTERM"]
            return names[signal] ?? "signal \(signal)"
        }
    }

    /// Starts `executable` with `arguments` (argv[0] included) and exactly `environment`. `descriptors` maps each
    /// child descriptor number to the parent descriptor it is a copy of; every other descriptor is closed.
    init(executable: String, arguments: [String], environment: [String], descriptors: [Int32: Int32]) throws {
        var actions = posix_spawn_file_actions_t()
        try Self.spawnCheck("posix_spawn_file_actions_init", posix_spawn_file_actions_init(&actions))
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (child, parent) in descriptors.sorted(by: { $0.key < $1.key }) {
            // dup2 clears close-on-exec on the copy; a descriptor mapped onto itself needs no copy.
            guard child != parent else { continue }
            try Self.spawnCheck("posix_spawn_file_actions_adddup2", posix_spawn_file_actions_adddup2(&actions, parent, child))
        }
        let highest = descriptors.keys.max() ?? 2
        for unmapped in 0..<highest where descriptors[unmapped] == nil {
            try Self.spawnCheck("posix_spawn_file_actions_addclose", posix_spawn_file_actions_addclose(&actions, unmapped))
        }
        try Self.spawnCheck("posix_spawn_file_actions_addclosefrom_np",
                            posix_spawn_file_actions_addclosefrom_np(&actions, highest + 1))

        var attributes = posix_spawnattr_t()
        try Self.spawnCheck("posix_spawnattr_init", posix_spawnattr_init(&attributes))
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        try Self.spawnCheck("posix_spawnattr_setsigdefault", posix_spawnattr_setsigdefault(&attributes, &all))
        try Self.spawnCheck("posix_spawnattr_setsigmask", posix_spawnattr_setsigmask(&attributes, &none))
        try Self.spawnCheck("posix_spawnattr_setflags", posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)))

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        try Self.spawnCheck("posix_spawn(\(executable))", posix_spawn(&pid, executable, &actions, &attributes, argv, envp))
        self.pid = pid
    }

    /// Delivers `signal`; harmless after the child has ended (it stays a zombie until `wait`).
    func kill(_ signal: Int32 = SIGKILL) {
        guard reaped == nil else { return }
        _ = Glibc.kill(pid, signal)
    }

    /// Blocks until the child has ended and reaps it. Idempotent.
    @discardableResult
    func wait() -> Termination {
        if let reaped { return reaped }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WTERMSIG are macros: the low 7 bits are the signal, 0 for a normal exit.
        let signal = status & 0x7f
        let termination: Termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
        reaped = termination
        return termination
    }

    /// posix_spawn and its helpers return an errno instead of setting it.
    private static func spawnCheck(_ call: String, _ result: Int32) throws {
        guard result == 0 else { throw SystemCallError(call: call, errno: result, function: #function) }
    }
}
