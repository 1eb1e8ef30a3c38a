import Metrics

/// The metrics one model's serving core records, made once from the factory the caller passes in, each with a
/// `model` label (names and units follow the Prometheus conventions: seconds, no unit for counts).
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

    public init(factory: MetricsFactory, model: String) {
        let model = [("model", model)]
        decodeDuration = Metrics.Timer(label: "avmae_decode_duration_seconds", dimensions: model, factory: factory)
        queueWait = Metrics.Timer(label: "avmae_queue_wait_seconds", dimensions: model, factory: factory)
        inferenceDuration = Metrics.Timer(label: "avmae_inference_duration_seconds", dimensions: model, factory: factory)
        batchSize = Recorder(label: "avmae_batch_size", dimensions: model, aggregate: true, factory: factory)
        queueDepth = Gauge(label: "avmae_queue_depth", dimensions: model, factory: factory)
        queueEstimatedSeconds = Gauge(label: "avmae_queue_estimated_seconds", dimensions: model, factory: factory)
        modelReady = Gauge(label: "avmae_model_ready", dimensions: model, factory: factory)
        rejectedByReason = Dictionary(uniqueKeysWithValues: RejectReason.allCases.map {
            ($0, Counter(label: "avmae_rejected_total", dimensions: model + [("reason", $0.rawValue)], factory: factory))
        })
    }

    public func setReady(_ ready: Bool) {
        modelReady.record(ready ? 1 : 0)
    }

    func rejected(_ reason: RejectReason) {
        rejectedByReason[reason]?.increment()
    }
}
