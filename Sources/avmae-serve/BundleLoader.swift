import ArgumentParser
import AVMAE
import DecodeIsolation
import Foundation
import HTTPServer
import Logging
import Media
import Metrics
import Serving

/// Builds the model backend and clip decoder for `serve` (and the bulk commands) from the configured bundle.
/// With `workers`, clips are decoded in those sandboxed processes (decode_isolation=process), else in-process.
enum BundleLoader {
    static func load(_ source: ModelSource, version: String, config: ServerConfig,
                     workers: DecodeWorkerPool?) throws -> (InferenceBackend, ClipDecoding) {
        let model = try Model(bundle: source.directory, precision: config.precision)
        let limits = MediaLimits(maxBytes: config.maxBodyBytes, maxDurationSeconds: config.maxDurationSeconds,
                                 maxVideoRows: config.maxVideoRows)
        var streamLimits = limits
        streamLimits.maxBytes = config.streamMaxBodyBytes
        streamLimits.maxDurationSeconds = config.streamMaxDurationSeconds
        let decoder: ClipDecoding = workers.map {
            ProcessClipDecoder(pool: $0, config: model.config, limits: limits, streamLimits: streamLimits,
                               hopSeconds: config.hopSeconds)
        } ?? MediaClipDecoder(config: model.config, limits: limits, streamLimits: streamLimits, hopSeconds: config.hopSeconds)
        return (ModelBackend(model: model, name: source.name, version: version), decoder)
    }

    /// The sandboxed decode workers, started before the model loads; nil with decode_isolation=none.
    static func decodeWorkers(_ config: ServerConfig, logger: Logger,
                              metricsFactory: MetricsFactory) throws -> DecodeWorkerPool? {
        guard config.decodeIsolation == .process else { return nil }
        var pool = DecodeWorkerPool.Configuration()
        pool.workers = config.decodeWorkers
        pool.memoryBytes = config.decodeWorkerMemoryMib << 20
        pool.cpuSecondsPerClip = config.decodeWorkerCpuSeconds
        do {
            return try DecodeWorkerPool(configuration: pool, logger: logger, metricsFactory: metricsFactory)
        } catch {
            throw ValidationError("could not start the decode workers (decode_isolation=process): \(error)")
        }
    }
}
