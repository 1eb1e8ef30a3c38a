import Serving

/// The Open Inference Protocol (KServe v2) REST endpoints next to /v1: health, server and model metadata, and
/// infer. Answers go back unwrapped; `APIRouter` adds the request id, metrics and the log line as for /v1.
struct V2Endpoints: Sendable {
    let lifecycle: Lifecycle
    /// The model a request names, if it is loaded: the one place that knows where models live.
    let model: @Sendable (_ name: String) -> ClipService?

    /// The project has no release number; this names the protocol surface, for clients that log it.
    static let serverVersion = "1"
    static let extensions = ["binary_tensor_data", "classification"]

    /// The served model's version string (its bundle digest, `ModelInfo.version`). Every answer and check goes
    /// through here.
    static func version(of info: ModelInfo) -> String { info.version.isEmpty ? "1" : info.version }

    func handle(_ route: V2Route, _ request: HTTPRequest, requestID: String) throws -> HTTPReply {
        guard route.methods.contains(request.method) else {
            throw APIError.methodNotAllowed(request.method, allowed: route.methods)
        }
        switch route {
        case .server:
            return .now(Self.json(V2ServerMetadataDTO(name: "avmae-serve", version: Self.serverVersion,
                                                      extensions: Self.extensions)))
        case .live:
            return .now(HTTPResponse(status: 200))
        case .ready:
            if let reason = lifecycle.state.notReadyReason { throw Self.notReady(reason) }
            return .now(HTTPResponse(status: 200))
        case .model(let path):
            let service = try loaded(path)
            return .now(Self.json(V2Signature(info: service.info).metadata(version: Self.version(of: service.info))))
        case .modelReady(let path):
            if let reason = lifecycle.state.notReadyReason { throw Self.notReady(reason) }
            _ = try loaded(path)
            return .now(HTTPResponse(status: 200))
        case .infer(let path):
            let service = try loaded(path)
            let signature = V2Signature(info: service.info)
            let inference = try V2Inference(body: request.body, headerLength: request.headers[V2BinaryFraming.headerLengthField],
                                             signature: signature, requestID: requestID)
            let mapping = V2OutputMapping(signature: signature, version: Self.version(of: service.info))
            return .later { respond in
                let answer: @Sendable (Result<RawOutputs, Error>) -> Void = { result in
                    do {
                        respond(try mapping.response(result.get(), for: inference))
                    } catch {
                        respond(Self.errorResponse(error))
                    }
                }
                switch inference.work {
                case .clips(let clips):
                    return V2ClipBatch.submit(clips, to: service, completion: answer)
                case .tensors(let tensors):
                    let pending = service.submit(tensors) { answer($0.mapError { $0 }) }
                    return { pending.abandon() }
                }
            }
        }
    }

    /// The model a path names, at the version it names (if any); 404 in the protocol's shape otherwise.
    private func loaded(_ path: V2Route.ModelPath) throws -> ClipService {
        guard let service = model(path.name) else {
            if let reason = lifecycle.state.notReadyReason { throw ServingError.notReady(reason) }
            throw APIError(status: 404, code: "not_found", message: "unknown model '\(path.name)'")
        }
        let version = Self.version(of: service.info)
        if let asked = path.version, asked != version {
            throw APIError(status: 404, code: "not_found",
                           message: "model '\(path.name)' has no version '\(asked)'; it serves version '\(version)'")
        }
        return service
    }

    /// Health answers are booleans carried by the status: 200 for true, 4xx for false (the protocol's rule).
    private static func notReady(_ reason: ReadinessReason) -> APIError {
        var error = APIError(ServingError.notReady(reason))
        if error.status == 503 { error.status = 400 }
        return error
    }

    static func json<T: Encodable>(_ body: T, status: Int = 200) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: JSON.encode(body))
    }

    /// The protocol's error shape, `{"error": "..."}`, with the status and headers of the /v1 mapping.
    static func errorResponse(_ error: Error) -> HTTPResponse {
        let apiError = APIError(any: error)
        var response = json(V2ErrorDTO(error: apiError.message), status: apiError.status)
        for (name, value) in apiError.headers.sorted(by: { $0.key < $1.key }) { response.headers.add(name, value) }
        return response
    }
}
