import Media
import Serving

/// POST /v1/classify?stream=true and /v1/embed?stream=true: a long recording answered as NDJSON, one line per
/// window as soon as the model has it, then a summary line. Until the first window the request is an ordinary
/// one (an error gets its status and JSON body); once 200 and the first line are out, an error becomes the last
/// line, naming the window it stopped at. A client that goes away cancels the work at its next window.
struct NDJSONStreamEndpoint: Sendable {
    private let service: ClipService
    private let request: StreamRequest
    private let encoding: FloatEncoding

    init(request: HTTPRequest, requestID: String, service: ClipService) throws {
        let reader = QueryReader(query: request.query)
        let task: ClipTask
        switch request.path {
        case Route.classify.rawValue:
            task = .classify(try ClipQuery.classify(reader, classes: service.info.numClasses))
            encoding = .json
        default:
            let (options, encoding, _) = try ClipQuery.embed(reader)
            guard !options.tokens else {
                throw APIError.invalidParameter("tokens", "tokens are not streamed; ask for pooled embeddings per window")
            }
            task = .embed(options)
            self.encoding = encoding
        }
        self.service = service
        self.request = StreamRequest(id: requestID, source: try Self.source(request), task: task)
    }

    /// The spooled file as it is, or the body in memory; a spooled upload must be the raw file.
    private static func source(_ request: HTTPRequest) throws -> MediaSource {
        guard let spooled = request.spooled else {
            return .bytes(try ClipBody.clipBytes(body: request.body, contentType: request.headers["Content-Type"]))
        }
        guard ClipBody.isRaw(contentType: request.headers["Content-Type"]) else {
            throw APIError(status: 415, code: "unsupported_media_type",
                           message: "a streamed upload large enough to be spooled to disk "
                               + "must be the raw file (audio/*, video/* or application/octet-stream), not a multipart form")
        }
        return .file(spooled)
    }

    /// `respond` gets the HTTP response once: the error, or 200 with the body that the following lines go into.
    /// Returns what stops the stream when the client leaves before its first line (after it, the response
    /// stream itself notices).
    func run(respond: @escaping @Sendable (Result<ResponseStream, Error>) -> Void) -> HTTPReply.ClientGone {
        let cancellation = StreamCancellation()
        let body = ResponseStream()
        body.onConnectionGone { cancellation.cancel(.cancelled("the client went away")) }
        let requestID = request.id
        let encoding = encoding
        let started = StartFlag()
        service.stream(request, cancellation: cancellation) { event in
            switch event {
            case .window(let window):
                body.write(NDJSON.line(WindowLineDTO(window, encoding: encoding)))
                if started.markStarted() { respond(.success(body)) }
            case .finished(let result, let windows):
                body.write(Self.summary(result, windows: windows, requestID: requestID, encoding: encoding))
                body.close()
                if started.markStarted() { respond(.success(body)) }
            case .failed(let error, let window):
                if started.markStarted() {
                    respond(.failure(error))
                    return
                }
                let api = APIError(error)
                body.write(NDJSON.line(ErrorLineDTO(error: .init(code: api.code, message: api.message, window: window))))
                body.close()
            }
        }
        return { cancellation.cancel(.cancelled("the client went away")) }
    }

    private static func summary(_ result: ClipResult, windows: Int, requestID: String, encoding: FloatEncoding) -> [UInt8] {
        switch result {
        case .classify(let classified):
            return NDJSON.line(SummaryLineDTO(summary: ClassifyResponse(requestID: requestID, classified)))
        case .embed(let embedded):
            var response = EmbedResponse(requestID: requestID, embedded, encoding: encoding, includeWindows: false)
            response.windowsUsed = windows
            return NDJSON.line(SummaryLineDTO(summary: response))
        case .outputs:
            return NDJSON.line(ErrorLineDTO(error: .init(code: "internal_error", message: "raw outputs came back for a stream",
                                                         window: windows)))
        }
    }
}

/// Whether the HTTP response (status and headers) has gone out; events arrive one at a time, in order.
private final class StartFlag: @unchecked Sendable {
    private var started = false

    /// True the first time only.
    func markStarted() -> Bool {
        defer { started = true }
        return !started
    }
}
