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
    static func load(_ config: ServerConfig, workers: DecodeWorkerPool?) throws -> (InferenceBackend, ClipDecoding) {
        let model = try Model(bundle: URL(fileURLWithPath: config.bundle ?? ""), precision: config.precision)
        let limits = MediaLimits(maxBytes: config.maxBodyBytes, maxDurationSeconds: config.maxDurationSeconds,
                                 maxVideoRows: config.maxVideoRows)
        let decoder: ClipDecoding = workers.map {
            ProcessClipDecoder(pool: $0, config: model.config, limits: limits, hopSeconds: config.hopSeconds)
        } ?? MediaClipDecoder(config: model.config, limits: limits, hopSeconds: config.hopSeconds)
        return (ModelBackend(model: model), decoder)
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
