import Media

/// Header names compared case-insensitively, as HTTP says; insertion order kept for responses.
public struct HTTPHeaders: Sendable, Sequence {
    private var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public subscript(name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

/// What the MHD wrapper knows before the body arrives: enough to refuse a request early.
public struct HTTPRequestHead: Sendable {
    public var method: String
    public var path: String
    public var headers: HTTPHeaders
    /// Query arguments, already percent-decoded by libmicrohttpd; the first value wins for a repeated key.
    public var query: [String: String] = [:]

    /// The declared body length, if the client sent one.
    public var contentLength: Int? { headers["Content-Length"].flatMap { Int($0) } }
}

public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    /// Query arguments, already percent-decoded by libmicrohttpd; the first value wins for a repeated key.
    public var query: [String: String]
    public var body: [UInt8]
    /// A body larger than its `BodyLimit.spoolAboveBytes` went to an unlinked temporary file instead of `body`.
    public var spooled: MediaFile?

    public var method: String { head.method }
    public var path: String { head.path }
    public var headers: HTTPHeaders { head.headers }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// A body written while it is sent (chunked); `body` is then unused.
    public var stream: ResponseStream?

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], stream: ResponseStream? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
    }
}

/// How much body a request may send, and from what size it goes to a temporary file rather than memory.
public struct BodyLimit: Sendable {
    public var maxBytes: Int
    public var spoolAboveBytes: Int?

    public init(maxBytes: Int, spoolAboveBytes: Int? = nil) {
        self.maxBytes = maxBytes
        self.spoolAboveBytes = spoolAboveBytes
    }
}

/// How a handler answers: at once (health, metrics, errors) or later from another thread (inference), in
/// which case the connection is suspended in between and holds no thread.
public enum HTTPReply: Sendable {
    /// What to do when the client closes its connection before the answer: stop the work it started.
    /// `respond` must still be called afterwards (with anything), which lets the server close the connection.
    public typealias ClientGone = @Sendable () -> Void

    case now(HTTPResponse)
    /// `start` begins the work and returns what to do if the client goes away before `respond`.
    case later(@Sendable (_ respond: @escaping @Sendable (HTTPResponse) -> Void) -> ClientGone)
}

public protocol HTTPHandler: Sendable {
    /// Called once the headers are in, before any body byte is read. A response here ends the request early
    /// (e.g. 413 for a declared Content-Length over the cap), and libmicrohttpd skips the upload.
    func preflight(_ head: HTTPRequestHead) -> HTTPResponse?
    /// The body went past the configured cap while streaming in; the rest was discarded.
    func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse
    func handle(_ request: HTTPRequest) -> HTTPReply
    /// This request's body cap and spooling; nil for the server's `maxBodyBytes`, kept in memory.
    func bodyLimit(_ head: HTTPRequestHead) -> BodyLimit?
    /// The body could not be spooled (temporary directory full or missing).
    func spoolFailed(_ head: HTTPRequestHead, _ error: Error) -> HTTPResponse
}

extension HTTPHandler {
    public func bodyLimit(_ head: HTTPRequestHead) -> BodyLimit? { nil }

    public func spoolFailed(_ head: HTTPRequestHead, _ error: Error) -> HTTPResponse {
        HTTPResponse(status: 500, body: Array("could not store the upload: \(error)\n".utf8))
    }
}
