import AVMAE
import DecodeIsolation
import Foundation
import HTTPServer
import Media
import Serving

/// Builds one model's backend and clip decoder for `serve`. With `workers`, clips are decoded in those sandboxed
/// processes (decode_isolation=process), else in the daemon.
enum BundleLoader {
    static func load(_ source: ModelSource, version: String, config: ServerConfig,
                     workers: DecodeWorkerPool?) throws -> (InferenceBackend, ClipDecoding) {
        let model = try Model(bundle: source.directory, precision: config.precision)
        let limits = MediaLimits(maxBytes: config.maxBodyBytes, maxDurationSeconds: config.maxDurationSeconds,
                                 maxVideoRows: config.maxVideoRows)
        let decoder: ClipDecoding = workers.map {
            ProcessClipDecoder(pool: $0, config: model.config, limits: limits, hopSeconds: config.hopSeconds)
        } ?? MediaClipDecoder(config: model.config, limits: limits, hopSeconds: config.hopSeconds)
        return (ModelBackend(model: model, name: source.name, version: version), decoder)
    }
}
