import Glibc

/// Tries one thing the worker sandbox must refuse, from inside it, and says what happened: the test that the
/// filter really holds (`avmae-serve decode-worker --probe NAME`). Calls that kill the worker end the process
/// with SIGSYS instead of returning.
public enum SandboxProbe: String, CaseIterable, Sendable {
    case openFile = "open"
    case socket
    case exec
    case executableMemory = "mmap-exec"
    case fork
    /// Must work: threads are made with clone after clone3 fails with ENOSYS.
    case thread

    /// Enters the sandbox as a worker does, tries, and returns "<probe>: <errno name or ok>".
    public func run(memoryBytes: Int) throws -> String {
        try WorkerSandbox.enter(.init(memoryBytes: memoryBytes))
        errno = 0
        let ok: Bool
        switch self {
        case .openFile: ok = open("/etc/passwd", O_RDONLY) >= 0
        case .socket: ok = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) >= 0
        case .exec:
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
            ok = execv("/bin/true", argv) >= 0
        case .executableMemory:
            ok = mmap(nil, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED
        case .fork:
            let pid = Glibc.fork()
            if pid == 0 { _exit(0) }
            ok = pid > 0
        case .thread:
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { _ in nil }, nil)  // returns the error, leaves errno
            if result == 0 { pthread_join(thread, nil) } else { errno = result }
            ok = result == 0
        }
        return "\(rawValue): \(ok ? "ok" : Self.name(errno))"
    }

    private static func name(_ error: Int32) -> String {
        let names: [Int32: String] = [EPERM: "EPERM", EACCES: "EACCES", ENOSYS: "ENOSYS", EAGAIN: "EAGAIN"]
        return names[error] ?? "errno \(error)"
    }
}
