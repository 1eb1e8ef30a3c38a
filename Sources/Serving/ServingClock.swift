import Dispatch

/// A point on a monotonic timeline, in nanoseconds. The batching state machine only ever sees these, so tests
/// can drive it with made-up instants instead of sleeping.
public struct ServingInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }

    public func adding(seconds: Double) -> ServingInstant {
        ServingInstant(nanoseconds: nanoseconds &+ UInt64(max(0, seconds) * 1e9))
    }

    /// Seconds from `earlier` to self, never negative.
    public func seconds(since earlier: ServingInstant) -> Double {
        nanoseconds > earlier.nanoseconds ? Double(nanoseconds - earlier.nanoseconds) / 1e9 : 0
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

public protocol ServingClock: Sendable {
    func now() -> ServingInstant
}

/// The process's monotonic clock (CLOCK_MONOTONIC via Dispatch), the same one DispatchTime deadlines use.
public struct MonotonicClock: ServingClock {
    public init() {}
    public func now() -> ServingInstant { ServingInstant(nanoseconds: DispatchTime.now().uptimeNanoseconds) }
}

extension ServingInstant {
    var dispatchTime: DispatchTime { DispatchTime(uptimeNanoseconds: nanoseconds) }
}
