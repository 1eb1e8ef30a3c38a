import AVMAE
import Media

/// The real decoder: `Media.MediaDecoder` with a `ClipPolicy` filled from the bundle's config, its errors
/// translated to `ServingError` here so nothing above Serving sees a MediaError.
public struct MediaClipDecoder: ClipDecoding {
    private let decoder: MediaDecoder
    private let config: ModelConfig
    private let hopSeconds: Double?

    public init(config: ModelConfig, limits: MediaLimits, hopSeconds: Double?) {
        self.decoder = MediaDecoder(limits: limits)
        self.config = config
        self.hopSeconds = hopSeconds
    }

    public func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows {
        let policy = ClipPolicy(
            sampleRate: config.frontend.sampleRate, windowSeconds: config.clipSeconds, hopSeconds: hopSeconds,
            frames: config.frames, stride: config.stride, fps: config.fps, resizeShort: config.resizeShort,
            cropSize: ModelBackend.cropSize, wantAudio: want.contains(.audio), wantVideo: want.contains(.video),
            crops: crops.rawValue)
        let clip: DecodedClip
        do {
            clip = try decoder.decode(bytes, policy: policy)
        } catch .noUsableStream(let why) {
            // None of the wanted streams is there: the clip has nothing this request can use, which the service
            // reports as modality_unavailable with what the request asked for, and why.
            return DecodedWindows(durationSeconds: 0, hasAudio: false, hasVideo: false, windows: [], unusableReason: why)
        } catch {
            throw Self.translate(error)
        }
        return DecodedWindows(
            durationSeconds: clip.info.durationSeconds, hasAudio: clip.hasAudio, hasVideo: clip.hasVideo,
            windows: clip.windows.map {
                DecodedWindow(index: $0.index, startSeconds: $0.startSeconds, waveform: $0.waveform,
                              videoCrops: $0.videoCrops, frameTimes: $0.frameTimes)
            })
    }

    static func translate(_ error: MediaError) -> ServingError {
        switch error {
        case .empty, .corrupt, .truncated, .noUsableStream, .tooManyStreams:
            return .undecodableClip(error.description)
        case .unsupportedFormat:
            return .unsupportedFormat(error.description)
        case .tooLong(let seconds, let limit):
            return .clipTooLong(seconds: seconds, limit: limit)
        case .tooLarge, .frameTooLarge, .tooMuchVideo:
            return .clipTooLarge(error.description)
        }
    }
}
