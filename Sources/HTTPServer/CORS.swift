/// Cross-origin access for pages in a browser (`cors_allowed_origins`). A browser sends a preflight (OPTIONS
/// with Access-Control-Request-Method) before a POST with a clip or an Authorization header, without
/// credentials, so it is answered before authentication. Every other answer tells an allowed Origin that it
/// may read the response, and which of our headers it may see (X-Request-Id, Retry-After).
public struct CORSPolicy: Sendable {
    /// Exact origins (`https://app.example.com`, no path); "*" allows any.
    public let allowedOrigins: [String]

    /// What a page may send: the API key, the clip's type, its own request id.
    static let allowedHeaders = "Authorization, Content-Type, X-Request-Id"
    static let exposedHeaders = "X-Request-Id, Retry-After"
    /// How long a browser may reuse a preflight answer.
    static let maxAgeSeconds = 600

    public init(allowedOrigins: [String]) {
        self.allowedOrigins = allowedOrigins
    }

    private var anyOrigin: Bool { allowedOrigins.contains("*") }

    func allows(_ origin: String) -> Bool {
        anyOrigin || allowedOrigins.contains(origin)
    }

    /// The answer to a preflight for a route taking `methods`, or nil when `head` is not a preflight. An origin
    /// or method that is not allowed gets a bare 204, which the browser reads as a refusal.
    func preflight(_ head: HTTPRequestHead, methods: [String]) -> HTTPResponse? {
        guard head.method == "OPTIONS", let origin = head.headers["Origin"],
              let method = head.headers["Access-Control-Request-Method"] else { return nil }
        var response = HTTPResponse(status: 204)
        response.headers.add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
        guard allows(origin), methods.contains(method) else { return response }
        response.headers.add("Access-Control-Allow-Methods", methods.joined(separator: ", "))
        response.headers.add("Access-Control-Allow-Headers", Self.allowedHeaders)
        response.headers.add("Access-Control-Max-Age", "\(Self.maxAgeSeconds)")
        return response
    }

    /// Adds the CORS headers to any answer, preflight or not. `Vary: Origin` goes on every one, so a cache does
    /// not hand one origin's answer to another.
    func decorate(_ response: inout HTTPResponse, origin: String?) {
        response.headers.add("Vary", "Origin")
        guard let origin, allows(origin) else { return }
        response.headers.add("Access-Control-Allow-Origin", anyOrigin ? "*" : origin)
        response.headers.add("Access-Control-Expose-Headers", Self.exposedHeaders)
    }
}
