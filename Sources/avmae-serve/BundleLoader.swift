import HTTPServer
import Serving

/// Builds the model backend and clip decoder for `serve` from the configured bundle.
enum BundleLoader {
    enum LoadError: Error, CustomStringConvertible {
        case notYetAvailable

        var description: String { "this build has no model loader yet (branch `main` not merged)" }
    }

    static func load(_ config: ServerConfig) throws -> (InferenceBackend, ClipDecoding) {
        throw LoadError.notYetAvailable
    }
}
