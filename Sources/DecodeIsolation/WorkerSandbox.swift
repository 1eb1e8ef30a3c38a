import Glibc
import SystemIntegration

/// What a decode worker may do once it has its clip channel: compute, use memory, make threads, read and write
/// the descriptors it was given, and little else. It cannot open files, make sockets, start programs or map
/// memory executable (W^X for the decoder, whatever the unit allows the compute engine).
///
/// Calls that libraries make in passing and cope with when they fail (glibc and FFmpeg read /proc and /sys to
/// count CPUs; isatty's ioctl; locale files) fail with an errno. Starting another program kills the worker.
enum WorkerSandbox {
    /// Resource limits, set before the filter so a compromised decoder cannot raise them.
    struct Limits: Sendable, Equatable {
        /// RLIMIT_DATA: the heap and private mappings. RLIMIT_AS would also count the address space that glibc's
        /// arenas, thread stacks and the libraries reserve without touching.
        var memoryBytes: Int
    }

    /// Sets the memory limit, then installs the filter. After this the process can only use what it holds.
    static func enter(_ limits: Limits) throws {
        var data = rlimit(rlim_cur: rlim_t(limits.memoryBytes), rlim_max: rlim_t(limits.memoryBytes))
        try check("setrlimit(RLIMIT_DATA)", setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &data))
        try filter.load()
    }

    /// Caps the CPU time the next clip may use: the soft limit (SIGXCPU, which ends the worker) is set to the time
    /// used so far plus `seconds`. The parent also keeps a wall-clock bound, since the worker could raise its
    /// own soft limit.
    static func limitCPU(seconds: Int) throws {
        var usage = rusage()
        try check("getrusage", getrusage(RUSAGE_SELF.rawValue, &usage))
        let used = Int(usage.ru_utime.tv_sec) + Int(usage.ru_stime.tv_sec) + 1
        var cpu = rlimit(rlim_cur: rlim_t(used + seconds), rlim_max: rlim_t.max)  // RLIM_INFINITY
        try check("setrlimit(RLIMIT_CPU)", setrlimit(__rlimit_resource_t(RLIMIT_CPU.rawValue), &cpu))
    }

    static let filter = SeccompFilter(defaultAction: .fail(errno: EPERM), rules: rules)

    private static let rules: [SeccompFilter.Rule] = {
        var rules = allowed.map { SeccompFilter.Rule(syscall: $0, action: .allow) }
        // Files: refused, with the errno a permission problem gives, so probing libraries carry on.
        rules += ["open", "openat", "openat2", "creat", "statx", "readlink", "readlinkat", "access", "faccessat",
                  "faccessat2", "stat", "lstat"]
            .map { SeccompFilter.Rule(syscall: $0, action: .fail(errno: EACCES)) }
        // glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH); with a path it would stat files.
        rules.append(.init(syscall: "newfstatat", action: .allow, conditions: [.bitsSet(3, Linux.atEmptyPath)]))
        // clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes glibc fall back to clone,
        // whose flags are an argument. clone is allowed only for threads (same memory, same signal handlers).
        rules.append(.init(syscall: "clone3", action: .fail(errno: ENOSYS)))
        rules.append(.init(syscall: "clone", action: .allow, conditions: [.bitsSet(0, Linux.cloneThread)]))
        // Memory, never executable.
        for call in ["mmap", "mprotect"] {
            rules.append(.init(syscall: call, action: .allow, conditions: [.bitsClear(2, UInt64(PROT_EXEC))]))
        }
        // Its own limits only (the per-clip CPU time); pid 0 is the caller.
        rules.append(.init(syscall: "prlimit64", action: .allow, conditions: [.equals(0, 0)]))
        // Thread names (libraries name their threads); the other prctl operations stay refused.
        rules.append(.init(syscall: "prctl", action: .allow, conditions: [.equals(0, Linux.prSetName)]))
        // Starting any program is never part of decoding.
        rules += ["execve", "execveat"].map { SeccompFilter.Rule(syscall: $0, action: .killProcess) }
        return rules
    }()

    /// Constants Swift's Glibc module does not show (they are _GNU_SOURCE or kernel-header macros).
    private enum Linux {
        static let atEmptyPath: UInt64 = 0x1000                         // AT_EMPTY_PATH, <fcntl.h>
        static let cloneThread: UInt64 = 0x0000_0100 | 0x0000_0800 | 0x0001_0000  // CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
        static let prSetName: UInt64 = 15                               // PR_SET_NAME, <linux/prctl.h>
    }

    /// Allowed whatever their arguments: they act on memory, time, the process's own threads and signals, and
    /// descriptors it already holds (the channel, the two shared-memory files, stderr).
    private static let allowed = [
        "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "fstat", "fcntl",
        "recvfrom", "recvmsg", "sendto", "sendmsg", "poll", "ppoll",
        "munmap", "mremap", "madvise", "brk",
        "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity", "membarrier",
        "exit", "exit_group", "restart_syscall",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "gettid", "getpid",
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom",
        "getrusage", "sysinfo", "uname", "getuid", "geteuid", "getgid", "getegid",
    ]
}
