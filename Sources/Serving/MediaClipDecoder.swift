import AVMAE
import Media

/// The real decoder: `Media.MediaDecoder` with a `ClipPolicy` filled from the bundle's config, its errors
/// translated to `ServingError` here so nothing above Serving sees a MediaError. Decoding in worker processes
/// (DecodeIsolation) uses the same policy and translation, so both paths answer alike.
public struct MediaClipDecoder: ClipDecoding {
    public let limits: MediaLimits
    /// For streamed recordings, decoded window by window: a longer duration and a larger upload.
    public let streamLimits: MediaLimits
    private let decoder: MediaDecoder
    private let config: ModelConfig
    private let hopSeconds: Double?

    public init(config: ModelConfig, limits: MediaLimits, streamLimits: MediaLimits? = nil, hopSeconds: Double?) {
        self.decoder = MediaDecoder(limits: limits)
        self.limits = limits
        self.streamLimits = streamLimits ?? limits
        self.config = config
        self.hopSeconds = hopSeconds
    }

    public func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows {
        let clip: DecodedClip
        do {
            clip = try decoder.decode(bytes, policy: policy(want: want, crops: crops))
        } catch {
            return try Self.windows(refusedWith: error)
        }
        return DecodedWindows(
            durationSeconds: clip.info.durationSeconds, hasAudio: clip.hasAudio, hasVideo: clip.hasVideo,
            windows: clip.windows.map {
                DecodedWindow(index: $0.index, startSeconds: $0.startSeconds, waveform: $0.waveform,
                              videoCrops: $0.videoCrops, frameTimes: $0.frameTimes)
            })
    }

    public func openStream(_ source: MediaSource, want: Set<Modality>, crops: CropCount) throws -> WindowSource {
        do {
            return ClipWindowSource(try ClipWindowStream(source: source, policy: policy(want: want, crops: crops),
                                                         limits: streamLimits, preferSndfile: decoder.preferSndfile))
        } catch {
            throw Self.streamRefusal(error)
        }
    }

    /// A recording refused when its stream opens: as `translate`, except that a missing stream is the
    /// service's modality_unavailable (which names the request's and the model's modalities).
    public static func streamRefusal(_ error: MediaError) -> ServingError {
        guard case .noUsableStream(let why) = error else { return translate(error) }
        return .modalityUnavailable(requested: .auto, clip: [], model: [], reason: why)
    }

    /// What to sample from a clip for this model and request.
    public func policy(want: Set<Modality>, crops: CropCount) -> ClipPolicy {
        ClipPolicy(
            sampleRate: config.frontend.sampleRate, windowSeconds: config.clipSeconds, hopSeconds: hopSeconds,
            frames: config.frames, stride: config.stride, fps: config.fps, resizeShort: config.resizeShort,
            cropSize: ModelBackend.cropSize, wantAudio: want.contains(.audio), wantVideo: want.contains(.video),
            crops: crops.rawValue)
    }

    /// The answer to a clip the decoder refused: no windows when none of the wanted streams is there (the
    /// service reports that as modality_unavailable, with what the request asked for and why), else the error.
    public static func windows(refusedWith error: MediaError) throws(ServingError) -> DecodedWindows {
        if case .noUsableStream(let why) = error {
            return DecodedWindows(durationSeconds: 0, hasAudio: false, hasVideo: false, windows: [], unusableReason: why)
        }
        throw translate(error)
    }

    public static func translate(_ error: MediaError) -> ServingError {
        switch error {
        case .empty, .corrupt, .truncated, .noUsableStream, .tooManyStreams:
            return .undecodableClip(error.description)
        case .unsupportedFormat:
            return .unsupportedFormat(error.description)
        case .tooLong(let seconds, let limit):
            return .clipTooLong(seconds: seconds, limit: limit)
        case .tooLarge, .tooMuchVideo:
            return .clipTooLarge(error.description, fitsAStream: true)
        case .frameTooLarge:
            return .clipTooLarge(error.description)
        }
    }
}
