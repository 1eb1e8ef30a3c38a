import Foundation

/// The streams a service runs now, at most `limit` at once: an hour of audio is minutes of the whole machine at
/// ViT-Large, so a few long recordings must not crowd out everyone else. Shutdown cancels them all.
final class StreamRegistry: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var running: [ObjectIdentifier: StreamCancellation] = [:]  // guarded by lock

    init(limit: Int) {
        precondition(limit >= 0, "max_streams cannot be negative")
        self.limit = limit
    }

    /// False when `limit` streams are running already.
    func admit(_ stream: StreamCancellation) -> Bool {
        lock.withLock {
            guard running.count < limit else { return false }
            running[ObjectIdentifier(stream)] = stream
            return true
        }
    }

    func remove(_ stream: StreamCancellation) {
        _ = lock.withLock { running.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    func cancelAll(_ why: ServingError) {
        lock.withLock { Array(running.values) }.forEach { $0.cancel(why) }
    }
}
