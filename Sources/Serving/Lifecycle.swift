import Foundation
import Logging

/// Why /readyz says no.
public enum ReadinessReason: String, Sendable, Equatable {
    case loading, warming, draining, stopped
    case loadFailed = "load_failed"
}

/// The daemon's life, start to exit. Transitions only go forward; `loadFailed` is terminal but keeps the
/// process up so /healthz and /readyz can say what went wrong.
public enum LifecycleState: Sendable, Equatable {
    case loading
    case warming
    case ready
    case draining
    case stopped
    case loadFailed(String)

    /// nil when ready; otherwise the reason to report.
    public var notReadyReason: ReadinessReason? {
        switch self {
        case .loading: return .loading
        case .warming: return .warming
        case .ready: return nil
        case .draining: return .draining
        case .stopped: return .stopped
        case .loadFailed: return .loadFailed
        }
    }

    /// Which transitions are legal; anything else is a programming error in the caller.
    func canMove(to next: LifecycleState) -> Bool {
        switch (self, next) {
        case (.loading, .warming), (.loading, .loadFailed), (.warming, .ready), (.warming, .loadFailed),
             (.ready, .draining), (.loading, .draining), (.warming, .draining), (.loadFailed, .draining),
             (.draining, .stopped):
            return true
        default:
            return false
        }
    }
}

/// The current lifecycle state, readable from any thread. Every transition is logged.
public final class Lifecycle: @unchecked Sendable {
    private let lock = NSLock()
    private var current: LifecycleState = .loading  // guarded by lock
    private let logger: Logger
    private let onChange: @Sendable (LifecycleState) -> Void

    public init(logger: Logger, onChange: @escaping @Sendable (LifecycleState) -> Void = { _ in }) {
        self.logger = logger
        self.onChange = onChange
    }

    public var state: LifecycleState {
        lock.withLock { current }
    }

    /// Moves to `next` if that is a legal step from the current state; returns whether it moved.
    @discardableResult
    public func move(to next: LifecycleState) -> Bool {
        let previous: LifecycleState? = lock.withLock {
            guard current.canMove(to: next) else { return nil }
            defer { current = next }
            return current
        }
        guard let previous else {
            logger.trace("lifecycle transition refused", metadata: ["to": "\(next)", "from": "\(state)"])
            return false
        }
        logger.info("lifecycle", metadata: ["from": "\(previous)", "to": "\(next)"])
        onChange(next)
        return true
    }
}
