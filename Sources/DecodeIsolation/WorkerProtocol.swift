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
enum WorkerRequest: Codable {
    case decode(DecodeJob)
    case credit(Int)
}

struct DecodeJob: Codable {
    var policy: ClipPolicy
    var limits: MediaLimits
    /// The clip is the first `clipBytes` bytes of the clip memory.
    var clipBytes: Int
    /// Windows the worker may send before waiting for credit; also the number of slots in the window memory.
    var credit: Int
    /// CPU time this clip may take (RLIMIT_CPU, reset per clip).
    var cpuSeconds: Int
}

enum WorkerReply: Codable {
    case decoded(ClipSummary)
    case failed(MediaError)
    case window(WindowPayload.Layout)
}

struct ClipSummary: Codable, Equatable {
    var durationSeconds: Double
    var hasAudio: Bool
    var hasVideo: Bool
    var windows: Int
}
