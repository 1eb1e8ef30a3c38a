import Serving

/// POST /v1/classify and /v1/embed: turn the HTTP request into a `ClipRequest`, run it, and shape the answer.
/// Parsing happens in `init` on the HTTP thread, so bad input is refused before the connection is suspended.
struct ClipEndpoint: Sendable {
    private enum Presentation: Sendable {
        case classify
        case embed(FloatEncoding, windows: Bool)
    }

    private let service: ClipService
    private let clip: ClipRequest
    private let presentation: Presentation
    /// For the hint that a recording too long or too large for one answer can be streamed.
    private let streamMaxBytes: Int

    init(request: HTTPRequest, requestID: String, service: ClipService, streamMaxBytes: Int) throws {
        let reader = QueryReader(query: request.query)
        let task: ClipTask
        switch request.path {
        case Route.classify.rawValue:
            task = .classify(try ClipQuery.classify(reader, classes: service.info.numClasses))
            presentation = .classify
        default:
            let (options, encoding, windows) = try ClipQuery.embed(reader)
            task = .embed(options)
            presentation = .embed(encoding, windows: windows)
        }
        let timeout = try ClipQuery.timeoutSeconds(reader)
        let bytes = try ClipBody.clipBytes(body: request.body, contentType: request.headers["Content-Type"])
        self.service = service
        self.streamMaxBytes = streamMaxBytes
        self.clip = ClipRequest(id: requestID, bytes: bytes, task: task, timeoutSeconds: timeout)
    }

    /// Returns what stops the work when the client goes away; `completion` is still called then.
    func run(completion: @escaping @Sendable (Result<any Encodable & Sendable, Error>) -> Void) -> HTTPReply.ClientGone {
        let requestID = clip.id
        let presentation = presentation
        let streamMaxBytes = streamMaxBytes
        let pending = service.submit(clip) { result in
            switch result {
            case .failure(let error):
                switch error {
                case .clipTooLong, .clipTooLarge(_, fitsAStream: true):
                    completion(.failure(APIError(error).suggestingStream(maxBytes: streamMaxBytes)))
                default:
                    completion(.failure(error))
                }
            case .success(.classify(let classified)):
                completion(.success(ClassifyResponse(requestID: requestID, classified)))
            case .success(.embed(let embedded)):
                guard case .embed(let encoding, let windows) = presentation else {
                    return completion(.failure(APIError.internalError("an embedding came back for a classify request")))
                }
                completion(.success(EmbedResponse(requestID: requestID, embedded, encoding: encoding,
                                                  includeWindows: windows)))
            case .success(.outputs):
                completion(.failure(APIError.internalError("raw outputs came back for a /v1 request")))
            }
        }
        return { pending.abandon() }
    }
}
