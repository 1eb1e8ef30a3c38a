/// What the file says about itself, for logs and for the response.
public struct MediaInfo: Sendable, Equatable {
    public struct Audio: Sendable, Equatable {
        public var codec: String
        public var sampleRate: Int
        public var channels: Int
    }

    public struct Video: Sendable, Equatable {
        public var codec: String
        /// Stored size, before rotation.
        public var width: Int
        public var height: Int
        public var fps: Double
        /// Degrees counter-clockwise the display matrix turns the stored picture (0, 90, 180 or 270).
        public var rotation: Int
    }

    /// FFmpeg's demuxer name (e.g. "mov,mp4,m4a,3gp,3g2,mj2") or "sndfile" for the libsndfile path.
    public var container: String
    /// The decoded audio's length when there is audio, otherwise the container's declared length.
    public var durationSeconds: Double
    public var audio: Audio?
    public var video: Video?
}

/// One model input: a window of the clip with its waveform and its video crops, aligned in time.
public struct ClipWindow: Sendable {
    public let index: Int
    public let startSeconds: Double
    /// Exactly `windowSamples` mono samples at the policy's rate, looped if the source is shorter; nil when
    /// audio was not wanted or the file has none.
    public let waveform: [Float]?
    /// One entry per temporal crop, each [frames, crop, crop, 3] row-major 8-bit RGB (the model maps a byte u to
    /// u / 255 * 2 - 1 as it reads it); empty when video was not wanted or the file has none.
    public let videoCrops: [[UInt8]]
    /// For each crop, the clip time in seconds each of its frames shows (spec Part A.4); empty without video.
    public let frameTimes: [[Double]]
}

/// A whole upload, cut into windows.
public struct DecodedClip: Sendable {
    public let info: MediaInfo
    public let windows: [ClipWindow]
    public var hasAudio: Bool { windows.first?.waveform != nil }
    public var hasVideo: Bool { !(windows.first?.videoCrops.isEmpty ?? true) }
}
