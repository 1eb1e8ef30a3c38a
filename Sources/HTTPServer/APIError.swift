import Serving

/// An error answer: status, a stable machine-readable code, a message that says what to do, and any headers
/// the status calls for (Allow on 405, Retry-After on 503). Rendered as {"error":{"code","message"}}.
public struct APIError: Error, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public var headers: [String: String]

    init(status: Int, code: String, message: String, headers: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(status: 400, code: "bad_request", message: message)
    }
    static func invalidParameter(_ name: String, _ message: String) -> APIError {
        APIError(status: 400, code: "invalid_parameter", message: "query parameter '\(name)': \(message)")
    }
    static func unauthorized(keyGiven: Bool) -> APIError {
        APIError(status: 401, code: "unauthorized",
                 message: keyGiven ? "the API key in the Authorization header is not valid"
                     : "this server needs an API key: send 'Authorization: Bearer <key>'",
                 headers: ["WWW-Authenticate": "Bearer realm=\"avmae-serve\""])
    }
    static func notFound(_ path: String) -> APIError {
        APIError(status: 404, code: "not_found", message: "no route for '\(path)'; see /v1/models, /v1/classify, /v1/embed")
    }
    static func methodNotAllowed(_ method: String, allowed: [String]) -> APIError {
        APIError(status: 405, code: "method_not_allowed",
                 message: "\(method) is not allowed here; use \(allowed.joined(separator: ", "))",
                 headers: ["Allow": allowed.joined(separator: ", ")])
    }
    static let lengthRequired = APIError(
        status: 411, code: "length_required",
        message: "send the clip with a Content-Length header (or chunked transfer encoding)")
    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(status: 413, code: "payload_too_large",
                 message: "the body is larger than this server's limit of \(limit) bytes (max_body_bytes)")
    }
    /// A recording too long or too large for one answer: the same error, pointing to the streamed form, which
    /// takes recordings up to the stream limits and answers window by window.
    func suggestingStream(maxBytes: Int) -> APIError {
        var hinted = self
        hinted.message += "; long recordings can be sent with ?stream=true (up to \(maxBytes) bytes), "
            + "answered window by window"
        return hinted
    }

    static func unsupportedMediaType(_ got: String?) -> APIError {
        APIError(status: 415, code: "unsupported_media_type",
                 message: "Content-Type '\(got ?? "(none)")' is not accepted; send audio/*, video/*, "
                     + "application/octet-stream, or multipart/form-data with a 'file' part")
    }
    static func internalError(_ message: String) -> APIError {
        APIError(status: 500, code: "internal_error", message: message)
    }

    /// Any error a route throws: ours as it is, a domain error by the mapping below, anything else as a 500.
    init(any error: Error) {
        switch error {
        case let error as APIError: self = error
        case let error as ServingError: self.init(error)
        default: self = .internalError("unexpected error: \(error)")
        }
    }

    /// The one place where domain errors become HTTP statuses (and codes, which bulk runs report too).
    public init(_ error: ServingError) {
        let message = error.description
        switch error {
        case .undecodableClip: self.init(status: 422, code: "undecodable_clip", message: message)
        // 415 is for the Content-Type header; bytes no demuxer recognises are an undecodable clip.
        case .unsupportedFormat: self.init(status: 422, code: "undecodable_clip", message: message)
        case .clipTooLarge: self.init(status: 413, code: "payload_too_large", message: message)
        case .clipTooLong: self.init(status: 422, code: "clip_too_long", message: message)
        case .modalityUnavailable: self.init(status: 422, code: "modality_unavailable", message: message)
        case .unsupportedTask: self.init(status: 400, code: "unsupported_task", message: message)
        case .invalidInput: self.init(status: 400, code: "invalid_input", message: message)
        case .queueFull(let after):
            self.init(status: 503, code: "overloaded", message: message, headers: ["Retry-After": "\(after)"])
        case .cancelled: self.init(status: 503, code: "cancelled", message: message)
        case .tooManyStreams(_, let after):
            self.init(status: 503, code: "too_many_streams", message: message, headers: ["Retry-After": "\(after)"])
        case .deadlineExceeded(let after):
            self.init(status: 503, code: "deadline_exceeded", message: message, headers: ["Retry-After": "\(after)"])
        case .notReady(let reason):
            self.init(status: 503, code: "not_ready", message: message,
                      headers: reason == .loadFailed ? [:] : ["Retry-After": "1"])
        case .inferenceFailed: self.init(status: 500, code: "internal_error", message: message)
        // nginx's code for a client that closed the connection; nobody receives it, but logs and metrics do.
        case .clientGone: self.init(status: 499, code: "client_closed_request", message: message)
        }
    }

    init(_ error: ModelLookupError) {
        let message = error.description
        switch error {
        case .unknown: self.init(status: 404, code: "model_not_found", message: message)
        case .unnamed: self.init(status: 400, code: "model_required", message: message)
        case .notReady(_, let state):
            self.init(status: 503, code: "not_ready", message: message,
                      headers: state == .loading ? ["Retry-After": "1"] : [:])
        }
    }
}
