import AVMAE

/// Everything a request can fail with, in domain terms; the HTTP layer maps each case to a status code.
public enum ServingError: Error, Equatable, CustomStringConvertible {
    /// The bytes are empty, corrupt, truncated or otherwise not a decodable clip.
    case undecodableClip(String)
    /// The container or codec is not one the decoder reads.
    case unsupportedFormat(String)
    /// The upload or one of its frames exceeds a configured size limit. `fitsAStream`: the limit is one a
    /// streamed request does not have (the whole upload's bytes, the video rows one answer may hold).
    case clipTooLarge(String, fitsAStream: Bool = false)
    case clipTooLong(seconds: Double, limit: Double)
    /// Neither the clip nor the model offer what the request asked for.
    case modalityUnavailable(requested: ModalityChoice, clip: [Modality], model: [Modality], reason: String? = nil)
    /// The loaded model cannot do this task (classification on a pretrained model without a head).
    case unsupportedTask(String)
    /// Raw tensors that do not fit the model (a branch it lacks, lengths that do not match the batch).
    case invalidInput(String)
    case queueFull(retryAfterSeconds: Int)
    /// The reader of a stream went away; nobody sees this answer.
    case cancelled(String)
    /// As many long recordings as the server streams at once are streaming already.
    case tooManyStreams(limit: Int, retryAfterSeconds: Int)
    case deadlineExceeded(retryAfterSeconds: Int)
    /// The client closed its connection before the answer; work not yet started was dropped.
    case clientGone
    case notReady(ReadinessReason)
    /// The model threw on a well-formed input: a bug, not the client's fault.
    case inferenceFailed(String)

    public var description: String {
        switch self {
        case .undecodableClip(let why): return "the clip could not be decoded: \(why)"
        case .unsupportedFormat(let what): return "unsupported media format: \(what)"
        case .clipTooLarge(let why, _): return "the clip is too large: \(why)"
        case .clipTooLong(let seconds, let limit):
            return "the clip is \(seconds) s long; this server accepts at most \(limit) s (trim it or raise max_duration_seconds)"
        case .modalityUnavailable(let requested, let clip, let model, let reason):
            return "modality '\(requested.rawValue)' is not available: the clip has [\(names(clip))], the model takes [\(names(model))]"
                + (reason.map { " (\($0))" } ?? "")
        case .unsupportedTask(let why): return why
        case .invalidInput(let why): return "invalid input: \(why)"
        case .queueFull(let after): return "the inference queue is full; retry in \(after) s"
        case .deadlineExceeded(let after):
            return "the request did not finish within its deadline (timeout_ms, at most request_timeout_seconds); "
                + "retry in \(after) s, with a longer timeout_ms or a shorter clip"
        case .clientGone: return "the client closed the connection before the answer"
        case .cancelled(let why): return "cancelled: \(why)"
        case .tooManyStreams(let limit, let after):
            return "\(limit) recordings are streaming already, the most this server runs at once (max_streams); retry in \(after) s"
        case .notReady(let reason): return "the model is not ready: \(reason.rawValue)"
        case .inferenceFailed(let why): return "inference failed: \(why)"
        }
    }
}

private func names(_ modalities: [Modality]) -> String {
    modalities.map(\.rawValue).joined(separator: ", ")
}
