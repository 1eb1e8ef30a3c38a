import Foundation
import Logging
import Metrics
import Serving

/// Routes requests to endpoints, and wraps every answer the same way: X-Request-Id, JSON errors, the request
/// metrics and one structured log line.
public final class APIRouter: HTTPHandler {
    private let lifecycle: Lifecycle
    private let models: ModelRepository
    private let exposition: MetricsExposition
    private let maxBodyBytes: Int
    /// The body limit of `?stream=true` requests: larger, and spooled to a file past a size.
    private let streamBodyLimit: BodyLimit
    private let authentication: Authentication?
    private let cors: CORSPolicy?
    private let logger: Logger
    private let metrics: HTTPMetrics
    private let v2: V2Endpoints

    /// What `Authorization: Bearer` must carry, and which paths are open without it.
    public struct Authentication: Sendable {
        public var keys: APIKeys
        public var exemptPaths: Set<String>

        public init(keys: APIKeys, exemptPaths: [String]) {
            self.keys = keys
            self.exemptPaths = Set(exemptPaths)
        }
    }

    public init(lifecycle: Lifecycle, models: ModelRepository, exposition: MetricsExposition, maxBodyBytes: Int,
                streamBodyLimit: BodyLimit? = nil, authentication: Authentication? = nil, cors: CORSPolicy? = nil,
                logger: Logger,
                metricsFactory: MetricsFactory) {
        self.lifecycle = lifecycle
        self.models = models
        self.exposition = exposition
        self.maxBodyBytes = maxBodyBytes
        self.streamBodyLimit = streamBodyLimit ?? BodyLimit(maxBytes: maxBodyBytes)
        self.authentication = authentication
        self.cors = cors
        self.logger = logger
        self.metrics = HTTPMetrics(factory: metricsFactory)
        self.v2 = V2Endpoints(lifecycle: lifecycle, model: { [models] name in try? models.service(named: name) })
    }

    public func preflight(_ head: HTTPRequestHead) -> HTTPResponse? {
        let chunked = head.headers["Transfer-Encoding"]?.lowercased().contains("chunked") ?? false
        let hasBody = chunked || (head.contentLength ?? 0) > 0
        // A browser's CORS preflight carries no credentials, so it is answered before authentication.
        if let cors, let route = Route(rawValue: head.path), let answer = cors.preflight(head, methods: route.methods) {
            return finish(answer, head: head, requestID: Self.requestID(head), start: Date())
        }
        do {
            // Before anything else, so an unauthenticated client learns nothing and uploads nothing.
            try authenticate(head)
            let takesBody: Bool
            do {
                takesBody = try self.takesBody(head)
            } catch where !hasBody {
                return nil  // answered by `handle`; a bodiless request keeps its keep-alive connection
            }
            guard takesBody else { return nil }
            guard let length = head.contentLength else {
                if chunked { return nil }
                throw APIError.lengthRequired
            }
            if length > (bodyLimit(head)?.maxBytes ?? maxBodyBytes) { throw payloadTooLarge(head) }
            // An OIP body is JSON with any binary tensors after it, whatever its Content-Type says.
            if !V2Route.owns(head.path), !ClipBody.isAccepted(contentType: head.headers["Content-Type"]) {
                throw APIError.unsupportedMediaType(head.headers["Content-Type"])
            }
            return nil
        } catch {
            return finish(errorResponse(error, path: head.path), head: head, requestID: Self.requestID(head), start: Date())
        }
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse {
        finish(errorResponse(payloadTooLarge(head), path: head.path), head: head, requestID: Self.requestID(head), start: Date())
    }

    /// 413 at the limit that applies; a /v1 upload that could have been streamed is told so.
    private func payloadTooLarge(_ head: HTTPRequestHead) -> APIError {
        if let limit = bodyLimit(head) { return .payloadTooLarge(limit: limit.maxBytes) }
        let error = APIError.payloadTooLarge(limit: maxBodyBytes)
        let streams = [Route.classify.rawValue, Route.embed.rawValue].contains(head.path)
            && streamBodyLimit.maxBytes > maxBodyBytes
        return streams ? error.suggestingStream(maxBytes: streamBodyLimit.maxBytes) : error
    }

    public func bodyLimit(_ head: HTTPRequestHead) -> BodyLimit? {
        Self.isStream(head.query) ? streamBodyLimit : nil
    }

    public func spoolFailed(_ head: HTTPRequestHead, _ error: Error) -> HTTPResponse {
        finish(errorResponse(APIError.internalError("\(error)"), path: head.path), head: head,
               requestID: Self.requestID(head), start: Date())
    }

    /// `?stream=true`; anything else that is not plainly false is refused later by the query reader.
    private static func isStream(_ query: [String: String]) -> Bool {
        (try? QueryReader(query: query).bool("stream")) ?? false
    }

    public func handle(_ request: HTTPRequest) -> HTTPReply {
        let start = Date()
        let requestID = Self.requestID(request.head)
        metrics.started()
        do {
            if V2Route.owns(request.path) {
                guard let route = V2Route(path: request.path) else { throw APIError.notFound(request.path) }
                if route.takesBody { metrics.uploaded(bytes: request.body.count) }
                return finish(try v2.handle(route, request, requestID: requestID), request, requestID, start)
            }
            switch try route(for: request.head) {
            case .healthz:
                return .now(finish(json(200, StatusResponse(status: "ok")), request, requestID, start))
            case .readyz:
                return .now(finish(readiness(), request, requestID, start))
            case .metrics:
                var headers = HTTPHeaders()
                headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                return .now(finish(HTTPResponse(status: 200, headers: headers, body: exposition.render()), request,
                                   requestID, start))
            case .playground, .playgroundScript, .playgroundStyle:
                guard let page = Playground.response(path: request.path) else { throw APIError.notFound(request.path) }
                return .now(finish(page, request, requestID, start))
            case .models:
                // Answered while loading too: each model says where it stands.
                return .now(finish(json(200, ModelsResponse(models: models.statuses.map(ModelDTO.init))), request,
                                   requestID, start))
            case .classify, .embed:
                // Readiness is checked (and refusals counted) by the service itself once it exists.
                metrics.uploaded(bytes: request.spooled?.size ?? request.body.count)
                let service = try service(for: request)
                if try QueryReader(query: request.query).bool("stream") {
                    return streamReply(request, requestID: requestID, start: start, service: service)
                }
                let endpoint = try ClipEndpoint(request: request, requestID: requestID, service: service,
                                                streamMaxBytes: streamBodyLimit.maxBytes)
                return .later { [self] respond in
                    endpoint.run { result in
                        let response: HTTPResponse
                        switch result {
                        case .success(let body): response = self.json(200, body)
                        case .failure(let error): response = self.errorResponse(error, path: request.path)
                        }
                        respond(self.finish(response, request, requestID, start))
                    }
                }
            }
        } catch {
            return .now(finish(errorResponse(error, path: request.path), request, requestID, start))
        }
    }

    /// A streamed answer: an ordinary response until the first window, then NDJSON lines.
    private func streamReply(_ request: HTTPRequest, requestID: String, start: Date, service: ClipService) -> HTTPReply {
        let endpoint: NDJSONStreamEndpoint
        do {
            endpoint = try NDJSONStreamEndpoint(request: request, requestID: requestID, service: service)
        } catch {
            return .now(finish(errorResponse(error, path: request.path), request, requestID, start))
        }
        return .later { [self] respond in
            endpoint.run { outcome in
                switch outcome {
                case .success(let body):
                    var headers = HTTPHeaders()
                    headers.add("Content-Type", "application/x-ndjson")
                    // nginx buffers responses unless told otherwise; each line must reach the client as it is made.
                    headers.add("X-Accel-Buffering", "no")
                    headers.add("Cache-Control", "no-cache")
                    respond(self.finish(HTTPResponse(status: 200, headers: headers, stream: body), request, requestID, start))
                case .failure(let error):
                    respond(self.finish(self.errorResponse(error, path: request.path), request, requestID, start))
                }
            }
        }
    }

    /// The answer for a request still waiting when the drain timeout runs out.
    public func cutOff(_ head: HTTPRequestHead) -> HTTPResponse {
        finish(errorResponse(ServingError.notReady(.draining), path: head.path), head: head, requestID: Self.requestID(head),
               start: Date())
    }

    private func authenticate(_ head: HTTPRequestHead) throws {
        guard let authentication, !authentication.exemptPaths.contains(head.path) else { return }
        let header = head.headers["Authorization"]
        guard authentication.keys.accepts(authorization: header) else {
            throw APIError.unauthorized(keyGiven: header != nil)
        }
    }

    /// Whether the route takes an upload (and so the body limits apply); throws for unknown routes and methods.
    private func takesBody(_ head: HTTPRequestHead) throws -> Bool {
        guard V2Route.owns(head.path) else { return try route(for: head).takesClip }
        guard let route = V2Route(path: head.path) else { throw APIError.notFound(head.path) }
        guard route.methods.contains(head.method) else { throw APIError.methodNotAllowed(head.method, allowed: route.methods) }
        return route.takesBody
    }

    private func route(for head: HTTPRequestHead) throws -> Route {
        guard let route = Route(rawValue: head.path) else { throw APIError.notFound(head.path) }
        guard route.methods.contains(head.method) else {
            throw APIError.methodNotAllowed(head.method, allowed: route.methods)
        }
        return route
    }

    /// The serving core of the model the request names with `?model=` (or the only or default one).
    private func service(for request: HTTPRequest) throws -> ClipService {
        do { return try models.service(named: request.query["model"]) } catch {
            // While the first load runs, every model is "not ready" the way /readyz says it.
            if let reason = lifecycle.state.notReadyReason, case .notReady = error {
                throw APIError(ServingError.notReady(reason))
            }
            throw APIError(error)
        }
    }

    private func readiness() -> HTTPResponse {
        let state = lifecycle.state
        guard let reason = state.notReadyReason else { return json(200, StatusResponse(status: "ready")) }
        var message: String?
        if case .loadFailed(let why) = state { message = why }
        var response = json(503, StatusResponse(status: "not_ready", reason: reason.rawValue, message: message))
        if reason != .loadFailed { response.headers.add("Retry-After", "1") }
        return response
    }

    private func json<T: Encodable>(_ status: Int, _ body: T) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: JSON.encode(body))
    }

    /// The error in the shape of the path's protocol: /v1's {"error":{"code","message"}}, /v2's {"error":"..."}.
    private func errorResponse(_ error: Error, path: String) -> HTTPResponse {
        if V2Route.owns(path) { return V2Endpoints.errorResponse(error) }
        let apiError = APIError(any: error)
        var response = json(apiError.status, ErrorBody(error: .init(code: apiError.code, message: apiError.message)))
        for (name, value) in apiError.headers.sorted(by: { $0.key < $1.key }) { response.headers.add(name, value) }
        return response
    }

    /// `finish` for an answer given now or later.
    private func finish(_ reply: HTTPReply, _ request: HTTPRequest, _ requestID: String, _ start: Date) -> HTTPReply {
        switch reply {
        case .now(let response):
            return .now(finish(response, request, requestID, start))
        case .later(let run):
            return .later { [self] respond in
                run { response in respond(self.finish(response, request, requestID, start)) }
            }
        }
    }

    private func finish(_ response: HTTPResponse, _ request: HTTPRequest, _ requestID: String, _ start: Date) -> HTTPResponse {
        defer { metrics.finished() }
        return finish(response, head: request.head, requestID: requestID, start: start)
    }

    private func finish(_ response: HTTPResponse, head: HTTPRequestHead, requestID: String, start: Date) -> HTTPResponse {
        var response = response
        response.headers.add("X-Request-Id", requestID)
        cors?.decorate(&response, origin: head.headers["Origin"])
        let seconds = Date().timeIntervalSince(start)
        let route = Route.label(for: head.path)
        metrics.record(route: route, status: response.status, seconds: seconds)
        logger.info("request", metadata: [
            "request.id": "\(requestID)", "route": "\(route)", "method": "\(head.method)",
            "status": "\(response.status)", "duration_ms": "\((seconds * 1e5).rounded() / 100)",
        ])
        return response
    }

    /// The client's X-Request-Id if it is sane (printable ASCII, at most 128 bytes), else a fresh random one.
    static func requestID(_ head: HTTPRequestHead) -> String {
        if let given = head.headers["X-Request-Id"], !given.isEmpty, given.utf8.count <= 128,
           given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) {
            return given
        }
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
