/// Why a decode worker could not answer for a clip. The request gets the message (422 undecodable_clip); the
/// reason labels `avmae_decode_worker_failures_total`.
struct WorkerFailure: Error, CustomStringConvertible {
    enum Reason: String, CaseIterable {
        /// Ended by a signal of its own making (SIGSEGV, SIGABRT, ...) or exited without answering.
        case crashed
        /// SIGKILL from outside (an operator, the OOM killer).
        case killed
        case memoryLimit = "memory_limit"
        case cpuLimit = "cpu_limit"
        /// No answer within the wall-clock bound; the daemon killed it.
        case timeout
        /// The seccomp filter ended it (SIGSYS): it tried to start a program.
        case forbiddenCall = "forbidden_call"
        /// It answered something the protocol does not allow, or its shared memory could not be read.
        case protocolError = "protocol"
    }

    var reason: Reason
    var message: String
    /// How the process ended, for the log.
    var termination: String

    var description: String { message }
}
