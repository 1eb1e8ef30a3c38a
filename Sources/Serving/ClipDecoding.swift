import AVMAE
import Media

/// One analysis window of a decoded clip, ready to become model rows.
public struct DecodedWindow: Sendable {
    public var index: Int
    public var startSeconds: Double
    public var waveform: [Float]?    // (windowSamples)
    public var videoCrops: [[UInt8]] // crops x (frames, 224, 224, 3) 8-bit RGB
    public var frameTimes: [[Double]] // crops x (frames): the clip time each frame shows, seconds

    public init(index: Int, startSeconds: Double, waveform: [Float]?, videoCrops: [[UInt8]], frameTimes: [[Double]] = []) {
        self.index = index
        self.startSeconds = startSeconds
        self.waveform = waveform
        self.videoCrops = videoCrops
        self.frameTimes = frameTimes
    }
}

public struct DecodedWindows: Sendable {
    public var durationSeconds: Double
    public var hasAudio: Bool
    public var hasVideo: Bool
    public var windows: [DecodedWindow]
    /// Why none of the wanted streams could be used (e.g. "the video is 1x1, ..."), when that is the case.
    public var unusableReason: String?

    public init(durationSeconds: Double, hasAudio: Bool, hasVideo: Bool, windows: [DecodedWindow],
                unusableReason: String? = nil) {
        self.durationSeconds = durationSeconds
        self.hasAudio = hasAudio
        self.hasVideo = hasVideo
        self.windows = windows
        self.unusableReason = unusableReason
    }

    public var available: Set<Modality> { Modality.available(audio: hasAudio, video: hasVideo) }
}

/// Turns uploaded bytes into windows shaped for the loaded model. The real one wraps `Media.MediaDecoder`;
/// its errors arrive here already translated into `ServingError`. A clip without any of the wanted streams
/// is not an error here: it decodes to no windows, and the service answers which modalities were missing.
public protocol ClipDecoding: Sendable {
    func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows
    /// A long recording, window by window, within the streaming limits (hours, not minutes). A recording with
    /// none of the wanted streams is refused with `modalityUnavailable` carrying only the reason; the service
    /// fills in the request's and the model's side.
    func openStream(_ source: MediaSource, want: Set<Modality>, crops: CropCount) throws -> WindowSource
}

extension Modality {
    /// The modalities a decoded recording offers.
    public static func available(audio: Bool, video: Bool) -> Set<Modality> {
        Set([audio ? Modality.audio : nil, video ? .video : nil].compactMap { $0 })
    }
}
