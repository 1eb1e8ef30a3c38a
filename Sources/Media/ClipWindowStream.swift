/// A recording cut into model windows as it decodes, one window per `next()`: the streaming counterpart of
/// `MediaDecoder.decode`, for sound, pictures or both. It holds one window's input at a time, whatever the
/// recording's length.
///
/// The windows are the whole-clip decoder's, window for window: the same grid (from the sound's length, or the
/// video's when there is no sound), the same samples on the same timeline, the same frames at the same times.
/// The sound is decoded in one pass; each window's frames are sampled by `VideoSampling` on a demuxer of their
/// own over the same bytes, which seeks to the keyframe before the window (a cost of one keyframe per window,
/// small beside the model's seconds per video row). Not thread-safe: one thread reads a stream.
public final class ClipWindowStream {
    public private(set) var info: MediaInfo
    private let source: MediaSource
    private let policy: ClipPolicy
    private let limits: MediaLimits
    /// Drives the window grid when the clip has sound.
    private let audio: AudioWindowStream?
    /// The grid of a clip without sound, known up front from the video's length.
    private let silentStarts: [Int]
    private let pictures: (sampling: VideoSampling, expectedEnd: Double?)?
    private var index = 0
    /// Kept for `decodedSeconds` when the grid is the video's.
    private var lastEnd = 0.0

    /// Opens the source and the tracks `policy` wants; refuses it as the whole-clip decoder would (size, format,
    /// declared length over `limits.maxDurationSeconds`, no usable track, frames over the pixel limit).
    public init(source: MediaSource, policy: ClipPolicy, limits: MediaLimits, preferSndfile: Bool = true) throws(MediaError) {
        let (probe, tracks) = try TrackChoice.open(source, policy: policy, limits: limits)
        info = MediaInfo(probe, tracks: tracks)
        self.source = source
        self.policy = policy
        self.limits = limits
        if let stream = tracks.audio {
            audio = try AudioWindowStream(source: source, probe: probe, stream: stream, policy: policy, limits: limits,
                                          preferSndfile: preferSndfile, alignToPictures: tracks.video != nil)
            silentStarts = []
        } else {
            guard let stream = tracks.video else { preconditionFailure("TrackChoice picks at least one track") }
            info.durationSeconds = try TrackChoice.videoSeconds(probe, stream: stream, limits: limits)
            audio = nil
            silentStarts = Windowing.starts(totalSamples: Int((info.durationSeconds * Double(policy.sampleRate)).rounded()),
                                            window: policy.windowSamples, hop: policy.hopSamples)
        }
        pictures = tracks.video.map { stream in
            (VideoSampling(stream: stream, rotation: probe.rotation(of: stream), threads: 1, limits: limits,
                                   resize: CropResize(resizeShort: policy.resizeShort, cropSize: policy.cropSize)),
             probe.trustedDuration(of: stream, orContainer: false))
        }
    }

    public var hasAudio: Bool { info.audio != nil }
    public var hasVideo: Bool { info.video != nil }

    /// Seconds of the recording decoded so far; its length once `next()` has returned nil.
    public var decodedSeconds: Double { audio?.decodedSeconds ?? lastEnd }

    /// The next window, or nil after the last. Throws what the decoders hit (no sound where the header promised
    /// some, the length limit, a track that ends well before its header says, pictures that cannot be decoded).
    public func next() throws(MediaError) -> ClipWindow? {
        let rate = Double(policy.sampleRate)
        let start: Int
        let waveform: [Float]?
        let clipSeconds: Double
        if let audio {
            guard let window = try audio.next() else {
                info.durationSeconds = audio.decodedSeconds
                return nil
            }
            (start, waveform) = (window.start, window.waveform)
            // Exact for the frame sampling: only a clip shorter than a window sees less than a window of it, and
            // such a clip has been decoded whole when its one window comes out.
            clipSeconds = audio.decodedSeconds
        } else {
            guard index < silentStarts.count else { return nil }
            (start, waveform, clipSeconds) = (silentStarts[index], nil, info.durationSeconds)
            lastEnd = min(info.durationSeconds, Double(start) / rate + policy.windowSeconds)
        }
        defer { index += 1 }
        guard let pictures else {
            return ClipWindow(index: index, startSeconds: Double(start) / rate, waveform: waveform, videoCrops: [], frameTimes: [])
        }
        let times = FrameSampling.times(windowStart: Double(start) / rate, clipSeconds: clipSeconds, policy: policy)
        let crops = try pictures.sampling(FormatInput(source: source, limits: limits), times: times,
                                          expectedEnd: pictures.expectedEnd)
        return ClipWindow(index: index, startSeconds: Double(start) / rate, waveform: waveform, videoCrops: crops,
                          frameTimes: times)
    }
}
