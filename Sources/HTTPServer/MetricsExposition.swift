import Metrics
import Prometheus

/// Builds the Prometheus factory with this server's buckets, and renders /metrics. Creating the factory is
/// not bootstrapping: only `main` calls `MetricsSystem.bootstrap` with it.
public struct MetricsExposition: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let process: ProcessMetrics

    public init(registry: PrometheusCollectorRegistry, factory: MetricsFactory) {
        self.registry = registry
        self.process = ProcessMetrics(factory: factory)
    }

    /// The factory every library records through; each family gets its HELP text from `MetricHelp`.
    public static func makeFactory(registry: PrometheusCollectorRegistry) -> MetricsFactory {
        PrometheusFactory(
            registry: registry,
            durationBuckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
            ],
            valueBuckets: [
                "avmae_batch_size": [1, 2, 4, 8, 16, 32, 64],
                "avmae_request_body_bytes": [16, 64, 256, 1024, 4096, 16384, 65536].map { $0 * 1024 },
            ])
    }

    /// Prometheus text format 0.0.4.
    public func render() -> [UInt8] {
        process.update()
        return registry.emitToBuffer()
    }
}
