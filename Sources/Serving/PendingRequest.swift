import Foundation

public typealias PendingClip = PendingRequest<ClipResult>

/// One admitted request, answered exactly once: by its result, by its deadline passing, or by its client going
/// away, whichever comes first. Whoever comes later finds it answered and does nothing, and work that has not
/// started yet checks `isAnswered` and is skipped, so a request nobody waits for costs no decode or model time.
/// `Output` is a clip's answer, or the raw outputs of a /v2 tensor request (which skips the decode stage).
public final class PendingRequest<Output: Sendable>: @unchecked Sendable {
    enum Stage {
        case decode
        case queue(jobID: UInt64)
        case answered
    }
    typealias Completion = @Sendable (Result<Output, ServingError>) -> Void
    /// What the service does when a request is cut short at `stage`: drop its queued rows, count it.
    typealias CutShort = @Sendable (_ why: ServingError, _ stage: Stage) -> Void

    private let lock = NSLock()
    private var stage = Stage.decode  // guarded by lock
    /// Dropped once called: it holds the caller's context (the upload, the connection) until then.
    private var completion: Completion?  // guarded by lock
    private let cutShort: CutShort

    init(completion: @escaping Completion, cutShort: @escaping CutShort) {
        self.completion = completion
        self.cutShort = cutShort
    }

    /// A request refused before any work: answered at once.
    static func refused(_ error: ServingError, completion: @escaping Completion) -> PendingRequest {
        let pending = PendingRequest(completion: completion, cutShort: { _, _ in })
        pending.answer(.failure(error))
        return pending
    }

    /// The client closed its connection: the request is answered with `clientGone` now (nobody reads it), and
    /// its work is dropped unless the model is already running it.
    public func abandon() {
        cut(.clientGone)
    }

    /// Nobody needs the answer any more for another reason than a disconnect (a request of several parts failed
    /// in another part): its work is dropped as for `abandon`, but it is not counted as a client that left.
    public func withdraw(because error: ServingError) {
        cut(error)
    }

    func cut(_ error: ServingError) {
        guard let stage = answer(.failure(error)) else { return }
        cutShort(error, stage)
    }

    /// Answers with `result` unless the request already has its answer. Returns the stage it was in, or nil
    /// when it was answered before.
    @discardableResult
    func answer(_ result: Result<Output, ServingError>) -> Stage? {
        let (completion, stage): (Completion?, Stage) = lock.withLock {
            defer {
                self.completion = nil
                self.stage = .answered
            }
            return (self.completion, self.stage)
        }
        guard let completion else { return nil }
        completion(result)
        return stage
    }

    var isAnswered: Bool {
        lock.withLock {
            if case .answered = stage { return true }
            return false
        }
    }

    /// Runs `submit` (which hands the rows to the batcher and returns their job id) unless the request was
    /// answered meanwhile. Under the lock, so a cut that comes later sees the job id and withdraws the job
    /// after the batcher has it. Returns whether the rows were queued.
    func enqueue(_ submit: () -> UInt64) -> Bool {
        lock.withLock {
            if case .answered = stage { return false }
            stage = .queue(jobID: submit())
            return true
        }
    }
}
