import AVMAE

/// Everything a request can fail with, in domain terms; the HTTP layer maps each case to a status code.
public enum ServingError: Error, Equatable, CustomStringConvertible {
    /// The bytes are empty, corrupt, truncated or otherwise not a decodable clip.
    case undecodableClip(String)
    /// The container or codec is not one the decoder reads.
    case unsupportedFormat(String)
    /// The upload or one of its frames exceeds a configured size limit.
    case clipTooLarge(String)
    case clipTooLong(seconds: Double, limit: Double)
    /// Neither the clip nor the model offer what the request asked for.
    case modalityUnavailable(requested: ModalityChoice, clip: [Modality], model: [Modality], reason: String? = nil)
    /// The loaded model cannot do this task (classification on a pretrained model without a head).
    case unsupportedTask(String)
    /// Raw tensors that do not fit the model (a branch it lacks, lengths that do not match the batch).
    case invalidInput(String)
    case queueFull(retryAfterSeconds: Int)
    case deadlineExceeded(retryAfterSeconds: Int)
    case notReady(ReadinessReason)
    /// The model threw on a well-formed input: a bug, not the client's fault.
    case inferenceFailed(String)

    public var description: String {
        switch self {
        case .undecodableClip(let why): return "the clip could not be decoded: \(why)"
        case .unsupportedFormat(let what): return "unsupported media format: \(what)"
        case .clipTooLarge(let why): return "the clip is too large: \(why)"
        case .clipTooLong(let seconds, let limit):
            return "the clip is \(seconds) s long; this server accepts at most \(limit) s (trim it or raise max_duration_seconds)"
        case .modalityUnavailable(let requested, let clip, let model, let reason):
            return "modality '\(requested.rawValue)' is not available: the clip has [\(names(clip))], the model takes [\(names(model))]"
                + (reason.map { " (\($0))" } ?? "")
        case .unsupportedTask(let why): return why
        case .invalidInput(let why): return "invalid input: \(why)"
        case .queueFull(let after): return "the inference queue is full; retry in \(after) s"
        case .deadlineExceeded(let after): return "the request waited longer than its deadline in the queue; retry in \(after) s"
        case .notReady(let reason): return "the model is not ready: \(reason.rawValue)"
        case .inferenceFailed(let why): return "inference failed: \(why)"
        }
    }
}

private func names(_ modalities: [Modality]) -> String {
    modalities.map(\.rawValue).joined(separator: ", ")
}
