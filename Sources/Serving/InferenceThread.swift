import DequeModule
import Foundation

/// One OS thread that runs the model calls, in order. A serial DispatchQueue hops between pool threads, but
/// OpenMP (the threading of Debian's oneDNN, the int8/bf16 engine) keeps its thread count and its team of
/// workers per calling thread: each new caller would start with OpenMP's default count and a team of its own.
/// One dedicated thread keeps one team at the configured count.
///
/// Owner and drain path: whoever makes it (the daemon: one for the process, shared across reloads). Work queued
/// before it is released still runs; then the thread exits.
public final class InferenceThread: @unchecked Sendable {
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var jobs = Deque<@Sendable () -> Void>()
        var released = false
    }

    private let state = State()
    /// The work each model served on this thread has queued: every model's admission counts the others'.
    public let load = InferenceLoad()

    public init(name: String = "avmae.inference") {
        let state = self.state
        let thread = Thread {
            while true {
                state.condition.lock()
                while state.jobs.isEmpty && !state.released { state.condition.wait() }
                guard let job = state.jobs.popFirst() else {
                    state.condition.unlock()
                    return
                }
                state.condition.unlock()
                job()
            }
        }
        thread.name = name
        thread.start()
    }

    deinit {
        state.condition.lock()
        state.released = true
        state.condition.signal()
        state.condition.unlock()
    }

    /// Runs `job` on the inference thread after everything queued before it.
    public func async(_ job: @escaping @Sendable () -> Void) {
        state.condition.lock()
        state.jobs.append(job)
        state.condition.signal()
        state.condition.unlock()
    }
}
