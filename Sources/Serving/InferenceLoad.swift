import Foundation

/// The model work that each model sharing one inference thread has queued, so that admission for one model
/// counts the others' too (see `BatchingStateMachine.wait(own:beside:)`). Each model's batcher publishes its
/// own after every change and takes its entry out when it goes (a reload retires it).
///
/// Threading: any thread; one lock.
public final class InferenceLoad: @unchecked Sendable {
    private let lock = NSLock()
    private var shares: [UInt64: BatchingStateMachine.Load] = [:]  // guarded by lock
    private var lastID: UInt64 = 0  // guarded by lock

    public init() {}

    /// A new model's place on the board.
    func register() -> UInt64 {
        lock.withLock {
            lastID += 1
            return lastID
        }
    }

    func publish(_ id: UInt64, _ load: BatchingStateMachine.Load) {
        lock.withLock { shares[id] = load }
    }

    func remove(_ id: UInt64) {
        _ = lock.withLock { shares.removeValue(forKey: id) }
    }

    /// Every other model's load, idle ones left out.
    func others(than id: UInt64) -> [BatchingStateMachine.Load] {
        lock.withLock { shares.filter { $0.key != id && $0.value.queuedSeconds > 0 }.map(\.value) }
    }
}
