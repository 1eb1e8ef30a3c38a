/// The Open Inference Protocol (KServe v2) REST paths, as Triton serves them. A model path may name a version
/// (`/v2/models/NAME/versions/VERSION/...`); without one it means the version being served.
enum V2Route: Equatable {
    case server                       // GET /v2
    case live                         // GET /v2/health/live
    case ready                        // GET /v2/health/ready
    case model(ModelPath)             // GET /v2/models/NAME
    case modelReady(ModelPath)        // GET /v2/models/NAME/ready
    case infer(ModelPath)             // POST /v2/models/NAME/infer

    struct ModelPath: Equatable {
        var name: String
        var version: String?
    }

    /// Whether a path belongs to /v2, so that even its 404s answer in the protocol's error shape.
    static func owns(_ path: String) -> Bool { path == "/v2" || path.hasPrefix("/v2/") }

    /// The route for a path, or nil for a path outside the protocol.
    init?(path: String) {
        guard Self.owns(path) else { return nil }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2).map(String.init)
        switch parts {
        case []: self = .server
        case ["health", "live"]: self = .live
        case ["health", "ready"]: self = .ready
        default:
            guard parts.count >= 2, parts[0] == "models", !parts[1].isEmpty else { return nil }
            var model = ModelPath(name: parts[1])
            var rest = parts.dropFirst(2)
            if rest.first == "versions" {
                guard rest.count >= 2, !rest[rest.startIndex + 1].isEmpty else { return nil }
                model.version = rest[rest.startIndex + 1]
                rest = rest.dropFirst(2)
            }
            switch Array(rest) {
            case []: self = .model(model)
            case ["ready"]: self = .modelReady(model)
            case ["infer"]: self = .infer(model)
            default: return nil
            }
        }
    }

    var methods: [String] {
        if case .infer = self { return ["POST"] }
        return ["GET", "HEAD"]
    }

    var takesBody: Bool {
        if case .infer = self { return true }
        return false
    }

    /// The `route` label in metrics: the path's template, so model names do not multiply series.
    var label: String {
        switch self {
        case .server: return "/v2"
        case .live: return "/v2/health/live"
        case .ready: return "/v2/health/ready"
        case .model: return "/v2/models/{name}"
        case .modelReady: return "/v2/models/{name}/ready"
        case .infer: return "/v2/models/{name}/infer"
        }
    }
}
