import Foundation
import Logging
import Metrics
import Serving

/// Routes requests to endpoints, and wraps every answer the same way: X-Request-Id, JSON errors, the request
/// metrics and one structured log line.
public final class APIRouter: HTTPHandler {
    private let lifecycle: Lifecycle
    private let slot: ServiceSlot
    private let exposition: MetricsExposition
    private let maxBodyBytes: Int
    private let authentication: Authentication?
    private let logger: Logger
    private let metrics: HTTPMetrics

    /// What `Authorization: Bearer` must carry, and which paths are open without it.
    public struct Authentication: Sendable {
        public var keys: APIKeys
        public var exemptPaths: Set<String>

        public init(keys: APIKeys, exemptPaths: [String]) {
            self.keys = keys
            self.exemptPaths = Set(exemptPaths)
        }
    }

    public init(lifecycle: Lifecycle, slot: ServiceSlot, exposition: MetricsExposition, maxBodyBytes: Int,
                authentication: Authentication? = nil, logger: Logger, metricsFactory: MetricsFactory) {
        self.lifecycle = lifecycle
        self.slot = slot
        self.exposition = exposition
        self.maxBodyBytes = maxBodyBytes
        self.authentication = authentication
        self.logger = logger
        self.metrics = HTTPMetrics(factory: metricsFactory)
    }

    public func preflight(_ head: HTTPRequestHead) -> HTTPResponse? {
        let chunked = head.headers["Transfer-Encoding"]?.lowercased().contains("chunked") ?? false
        let hasBody = chunked || (head.contentLength ?? 0) > 0
        do {
            // Before anything else, so an unauthenticated client learns nothing and uploads nothing.
            try authenticate(head)
            let route: Route
            do {
                route = try self.route(for: head)
            } catch where !hasBody {
                return nil  // answered by `handle`; a bodiless request keeps its keep-alive connection
            }
            guard route.takesClip else { return nil }
            guard let length = head.contentLength else {
                if chunked { return nil }
                throw APIError.lengthRequired
            }
            if length > maxBodyBytes { throw APIError.payloadTooLarge(limit: maxBodyBytes) }
            if !ClipBody.isAccepted(contentType: head.headers["Content-Type"]) {
                throw APIError.unsupportedMediaType(head.headers["Content-Type"])
            }
            return nil
        } catch {
            return finish(errorResponse(error), head: head, requestID: Self.requestID(head), start: Date())
        }
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse {
        finish(errorResponse(APIError.payloadTooLarge(limit: maxBodyBytes)), head: head,
               requestID: Self.requestID(head), start: Date())
    }

    public func handle(_ request: HTTPRequest) -> HTTPReply {
        let start = Date()
        let requestID = Self.requestID(request.head)
        metrics.started()
        do {
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
                let page = Playground.response(path: request.path) ?? errorResponse(APIError.notFound(request.path))
                return .now(finish(page, request, requestID, start))
            case .models:
                let service = try ready()
                return .now(finish(json(200, ModelsResponse(models: [ModelDTO(service.info)])), request, requestID, start))
            case .classify, .embed:
                // Readiness is checked (and refusals counted) by the service itself once it exists.
                metrics.uploaded(bytes: request.body.count)
                guard let service = slot.service else { throw notReady() }
                let endpoint = try ClipEndpoint(request: request, requestID: requestID, service: service)
                return .later { [self] respond in
                    endpoint.run { result in
                        let response: HTTPResponse
                        switch result {
                        case .success(let body): response = self.json(200, body)
                        case .failure(let error): response = self.errorResponse(error)
                        }
                        respond(self.finish(response, request, requestID, start))
                    }
                }
            }
        } catch {
            return .now(finish(errorResponse(error), request, requestID, start))
        }
    }

    /// The answer for a request still waiting when the drain timeout runs out.
    public func cutOff(_ head: HTTPRequestHead) -> HTTPResponse {
        finish(errorResponse(ServingError.notReady(.draining)), head: head, requestID: Self.requestID(head),
               start: Date())
    }

    private func authenticate(_ head: HTTPRequestHead) throws {
        guard let authentication, !authentication.exemptPaths.contains(head.path) else { return }
        let header = head.headers["Authorization"]
        guard authentication.keys.accepts(authorization: header) else {
            throw APIError.unauthorized(keyGiven: header != nil)
        }
    }

    private func route(for head: HTTPRequestHead) throws -> Route {
        guard let route = Route(rawValue: head.path) else { throw APIError.notFound(head.path) }
        guard route.methods.contains(head.method) else {
            throw APIError.methodNotAllowed(head.method, allowed: route.methods)
        }
        return route
    }

    /// The serving core, if the model is loaded and the server is ready for work.
    private func ready() throws -> ClipService {
        guard lifecycle.state.notReadyReason == nil, let service = slot.service else { throw notReady() }
        return service
    }

    private func notReady() -> APIError {
        APIError(ServingError.notReady(lifecycle.state.notReadyReason ?? .loading))
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

    private func errorResponse(_ error: Error) -> HTTPResponse {
        let apiError: APIError
        switch error {
        case let error as APIError: apiError = error
        case let error as ServingError: apiError = APIError(error)
        default: apiError = .internalError("unexpected error: \(error)")
        }
        var response = json(apiError.status, ErrorBody(error: .init(code: apiError.code, message: apiError.message)))
        for (name, value) in apiError.headers.sorted(by: { $0.key < $1.key }) { response.headers.add(name, value) }
        return response
    }

    private func finish(_ response: HTTPResponse, _ request: HTTPRequest, _ requestID: String, _ start: Date) -> HTTPResponse {
        defer { metrics.finished() }
        return finish(response, head: request.head, requestID: requestID, start: start)
    }

    private func finish(_ response: HTTPResponse, head: HTTPRequestHead, requestID: String, start: Date) -> HTTPResponse {
        var response = response
        response.headers.add("X-Request-Id", requestID)
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
