import Foundation
import Metrics

/// Per-route request metrics: `avmae_requests_total{route,code}`, `avmae_request_duration_seconds{route}`,
/// `avmae_inflight_requests` and `avmae_request_body_bytes` (uploads). Handles are made once per label set.
final class HTTPMetrics: @unchecked Sendable {
    private let factory: MetricsFactory
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]          // guarded by lock
    private var timers: [String: Metrics.Timer] = [:]      // guarded by lock
    private var inflightCount = 0                          // guarded by lock
    private let inflight: Gauge
    private let bodyBytes: Recorder

    init(factory: MetricsFactory) {
        self.factory = factory
        inflight = Gauge(label: "avmae_inflight_requests", factory: factory)
        inflight.record(0)
        bodyBytes = Recorder(label: "avmae_request_body_bytes", aggregate: true, factory: factory)
    }

    func uploaded(bytes: Int) {
        bodyBytes.record(bytes)
    }

    func started() {
        inflight.record(lock.withLock { inflightCount += 1; return inflightCount })
    }

    func finished() {
        inflight.record(lock.withLock { inflightCount -= 1; return inflightCount })
    }

    func record(route: String, status: Int, seconds: Double) {
        let (counter, timer): (Counter, Metrics.Timer) = lock.withLock {
            let key = "\(route) \(status)"
            let counter = counters[key] ?? Counter(label: "avmae_requests_total",
                                                   dimensions: [("route", route), ("code", "\(status)")], factory: factory)
            counters[key] = counter
            let timer = timers[route] ?? Metrics.Timer(label: "avmae_request_duration_seconds",
                                                       dimensions: [("route", route)], factory: factory)
            timers[route] = timer
            return (counter, timer)
        }
        counter.increment()
        timer.recordNanoseconds(Int64(seconds * 1e9))
    }
}
