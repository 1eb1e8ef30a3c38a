import Metrics
import Prometheus

/// swift-metrics on a Prometheus registry, as swift-prometheus's own `PrometheusMetricsFactory` does, but with
/// every family registered with its `# HELP` text from `MetricHelp`. That factory registers families without
/// help, and the registry keeps the help of a family's first registration (a different one later is a fatal
/// error), so the text has to come in on this path: swift-metrics itself has no place for it.
struct PrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let durationBuckets: [Duration]
    /// Buckets per value histogram (a swift-metrics `Recorder` with `aggregate: true`), by name.
    let valueBuckets: [String: [Double]]
    /// For a value histogram without its own entry in `valueBuckets`.
    let defaultValueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    private func family(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricHelp.text(for: name))
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        registry.makeCounter(descriptor: family(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: family(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: family(label), labels: dimensions,
                                           buckets: valueBuckets[label] ?? defaultValueBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        registry.makeGauge(descriptor: family(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        registry.makeDurationHistogram(descriptor: family(label), labels: dimensions, buckets: durationBuckets)
    }

    func destroyCounter(_ handler: CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as ValueHistogram: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    func destroyMeter(_ handler: MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
