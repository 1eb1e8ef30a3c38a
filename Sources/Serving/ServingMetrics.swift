import Metrics

/// The metrics the serving core records, made once from the factory the caller passes in
/// (names and units follow the Prometheus conventions: seconds, no unit for counts).
public struct ServingMetrics: Sendable {
    public enum RejectReason: String, Sendable, CaseIterable {
        case queueFull = "queue_full"
        case deadline
        /// Not ready: loading, warming, draining or load failed.
        case notReady = "not_ready"
    }

    let decodeDuration: Metrics.Timer
    let queueWait: Metrics.Timer
    let inferenceDuration: Metrics.Timer
    let batchSize: Recorder
    let queueDepth: Gauge
    /// The queue's work in seconds at the learned cost per row: what admission compares with deadlines.
    let queueEstimatedSeconds: Gauge
    let modelReady: Gauge
    private let rejectedByReason: [RejectReason: Counter]

    public init(factory: MetricsFactory) {
        decodeDuration = Metrics.Timer(label: "avmae_decode_duration_seconds", factory: factory)
        queueWait = Metrics.Timer(label: "avmae_queue_wait_seconds", factory: factory)
        inferenceDuration = Metrics.Timer(label: "avmae_inference_duration_seconds", factory: factory)
        batchSize = Recorder(label: "avmae_batch_size", aggregate: true, factory: factory)
        queueDepth = Gauge(label: "avmae_queue_depth", factory: factory)
        queueEstimatedSeconds = Gauge(label: "avmae_queue_estimated_seconds", factory: factory)
        modelReady = Gauge(label: "avmae_model_ready", factory: factory)
        rejectedByReason = Dictionary(uniqueKeysWithValues: RejectReason.allCases.map {
            ($0, Counter(label: "avmae_rejected_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
    }

    public func setReady(_ ready: Bool) {
        modelReady.record(ready ? 1 : 0)
    }

    func rejected(_ reason: RejectReason) {
        rejectedByReason[reason]?.increment()
    }
}
