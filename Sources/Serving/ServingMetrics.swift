import Metrics

/// The metrics one model's serving core records, made once from the factory the caller passes in, each with a
/// `model` label as Triton's `nv_inference_*` have (names and units follow the Prometheus conventions: seconds, no
/// unit for counts). The help text of each family is in HTTPServer's `MetricHelp`.
public struct ServingMetrics: Sendable {
    public enum RejectReason: String, Sendable, CaseIterable {
        case queueFull = "queue_full"
        /// The request's deadline passed: in the decode pool, decoding, queued or running.
        case deadline
        /// Not ready: loading, warming, draining or load failed.
        case notReady = "not_ready"
    }

    /// Where a request's work was when its client went away: decode and queue work is dropped, inference work
    /// had already started and runs to the end of its batch.
    public enum Stage: String, Sendable, CaseIterable {
        case decode, queue, inference
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
    private let disconnectsByStage: [Stage: Counter]

    public init(factory: MetricsFactory, model: String) {
        let labels = [("model", model)]
        decodeDuration = Metrics.Timer(label: "avmae_decode_duration_seconds", dimensions: labels, factory: factory)
        queueWait = Metrics.Timer(label: "avmae_queue_wait_seconds", dimensions: labels, factory: factory)
        inferenceDuration = Metrics.Timer(label: "avmae_inference_duration_seconds", dimensions: labels, factory: factory)
        batchSize = Recorder(label: "avmae_batch_size", dimensions: labels, aggregate: true, factory: factory)
        queueDepth = Gauge(label: "avmae_queue_depth", dimensions: labels, factory: factory)
        queueEstimatedSeconds = Gauge(label: "avmae_queue_estimated_seconds", dimensions: labels, factory: factory)
        modelReady = Gauge(label: "avmae_model_ready", dimensions: labels, factory: factory)
        rejectedByReason = Dictionary(uniqueKeysWithValues: RejectReason.allCases.map {
            ($0, Counter(label: "avmae_rejected_total", dimensions: labels + [("reason", $0.rawValue)], factory: factory))
        })
        disconnectsByStage = Dictionary(uniqueKeysWithValues: Stage.allCases.map {
            ($0, Counter(label: "avmae_client_disconnects_total", dimensions: labels + [("stage", $0.rawValue)],
                         factory: factory))
        })
    }

    public func setReady(_ ready: Bool) {
        modelReady.record(ready ? 1 : 0)
    }

    func rejected(_ reason: RejectReason) {
        rejectedByReason[reason]?.increment()
    }

    func clientGone(during stage: Stage) {
        disconnectsByStage[stage]?.increment()
    }
}
