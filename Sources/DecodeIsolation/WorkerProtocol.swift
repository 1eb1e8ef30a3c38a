import Media

/// The messages between the daemon and a decode worker, one clip at a time:
///
///     parent: decode(job)            the clip's bytes are in the clip memory
///     worker: decoded(summary)       or failed(error), which ends the clip
///     worker: window(layout)         up to `credit` of them, each in its slot of the window memory
///     parent: credit(n)              after reading windows, for the ones still to come
///     ...                            until summary.windows windows have been sent
///
/// The parent grants credit only for windows still to come, so none is left over when the clip ends, and the
/// worker never holds more than `credit` windows in shared memory: a long recording streams through bounded
/// memory once the decoder yields windows as it goes.
///
/// A streamed recording (decoded window by window, its length unknown until it ends) goes differently:
///
///     parent: stream(job)            the recording's bytes are in the clip memory
///     worker: opened(tracks)         or failed(error), the recording refused before any window
///     worker: window(layout)         as credit allows; the parent grants one credit per window it reads
///     worker: ended(seconds)         or failed(error) after some windows
///
/// A streaming worker serves that one recording and is then ended (as is one whose reader went away): its
/// length is not known ahead, so credit granted for windows that never came would be left in the channel.
enum WorkerRequest: Codable {
    case decode(DecodeJob)
    case credit(Int)
    case stream(DecodeJob)
}

struct DecodeJob: Codable {
    var policy: ClipPolicy
    var limits: MediaLimits
    /// The clip is the first `clipBytes` bytes of the clip memory.
    var clipBytes: Int
    /// Windows the worker may send before waiting for credit; also the number of slots in the window memory.
    var credit: Int
    /// CPU time this clip may take (RLIMIT_CPU, reset per clip; for a stream, per window).
    var cpuSeconds: Int
}

enum WorkerReply: Codable {
    case decoded(ClipSummary)
    case failed(MediaError)
    case window(WindowPayload.Layout)
    /// A stream's recording was accepted, with these of the wanted tracks.
    case opened(hasAudio: Bool, hasVideo: Bool)
    case ended(decodedSeconds: Double)
}

struct ClipSummary: Codable, Equatable {
    var durationSeconds: Double
    var hasAudio: Bool
    var hasVideo: Bool
    var windows: Int
}
