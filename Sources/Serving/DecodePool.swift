import DequeModule
import Dispatch
import Foundation

/// A bounded concurrent work queue for clip decoding: at most `concurrency` decodes run at once and at most
/// `maxPending` wait; beyond that `submit` says no so the caller can answer 503 instead of piling up work.
///
/// Owner: `ClipService`. Drain path: every submitted item is counted in the service's in-flight group.
final class DecodePool: @unchecked Sendable {
    private let queue = DispatchQueue(label: "avmae.decode", qos: .userInitiated, attributes: .concurrent)
    private let lock = NSLock()
    private let concurrency: Int
    private let maxPending: Int
    private var running = 0                                // guarded by lock
    private var waiting: Deque<@Sendable () -> Void> = []  // guarded by lock

    init(concurrency: Int, maxPending: Int) {
        precondition(concurrency >= 1 && maxPending >= 0, "invalid decode pool size")
        self.concurrency = concurrency
        self.maxPending = maxPending
    }

    /// Returns false (and drops `work`) when the pool is saturated.
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        enum Admission { case run, queued, refused }
        let admission: Admission = lock.withLock {
            if running < concurrency {
                running += 1
                return .run
            }
            guard waiting.count < maxPending else { return .refused }
            waiting.append(work)
            return .queued
        }
        switch admission {
        case .run: dispatch(work); return true
        case .queued: return true
        case .refused: return false
        }
    }

    private func dispatch(_ work: @escaping @Sendable () -> Void) {
        queue.async { [self] in
            work()
            let next: (@Sendable () -> Void)? = lock.withLock {
                if let next = waiting.popFirst() { return next }
                running -= 1
                return nil
            }
            if let next { dispatch(next) }
        }
    }
}
