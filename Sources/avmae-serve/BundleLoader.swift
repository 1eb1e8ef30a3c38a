import AVMAE
import Foundation
import HTTPServer
import Media
import Serving

/// Builds the model backend and clip decoder for `serve` from the configured bundle.
enum BundleLoader {
    static func load(_ config: ServerConfig) throws -> (InferenceBackend, ClipDecoding) {
        let model = try Model(bundle: URL(fileURLWithPath: config.bundle ?? ""), precision: config.precision)
        let limits = MediaLimits(maxBytes: config.maxBodyBytes, maxDurationSeconds: config.maxDurationSeconds,
                                 maxVideoRows: config.maxVideoRows)
        return (ModelBackend(model: model),
                MediaClipDecoder(config: model.config, limits: limits, hopSeconds: config.hopSeconds))
    }
}
