/// The routes of openapi.yaml and the methods each accepts.
enum Route: String, CaseIterable {
    case classify = "/v1/classify"
    case embed = "/v1/embed"
    case models = "/v1/models"
    case healthz = "/healthz"
    case readyz = "/readyz"
    case metrics = "/metrics"
    /// The browser playground (Playground.swift).
    case playground = "/"
    case playgroundScript = "/playground.js"
    case playgroundStyle = "/playground.css"

    var methods: [String] {
        switch self {
        case .classify, .embed: return ["POST"]
        case .models, .healthz, .readyz, .metrics, .playground, .playgroundScript, .playgroundStyle:
            return ["GET", "HEAD"]
        }
    }

    var takesClip: Bool { self == .classify || self == .embed }

    /// The `route` label in metrics: the path, or "unmatched" so random paths cannot blow up cardinality.
    static func label(for path: String) -> String {
        Route(rawValue: path)?.rawValue ?? V2Route(path: path)?.label ?? "unmatched"
    }
}
