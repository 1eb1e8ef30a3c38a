/// What the model wants from a clip (spec Part A.4): the audio window and hop, and for video how many frames,
/// how far apart, and how they are resized and cropped. The server fills it from the bundle's config.
public struct ClipPolicy: Sendable, Equatable, Codable {
    /// Audio samples per second of the model's waveform (mono float32).
    public var sampleRate: Int
    /// The model's window: 10 s for AudioSet models, 8 s for VGGSound.
    public var windowSeconds: Double
    /// Distance between window starts in a long clip; equal to `windowSeconds` unless set.
    public var hopSeconds: Double
    /// Video frames per crop (16 pretrained, 32 finetuned) and their spacing in 25 fps frames (4 or 2).
    public var frames: Int
    public var stride: Int
    /// The frame rate the frame indices refer to; the source is resampled to it by picking the frame on screen.
    public var fps: Double
    /// Short side after the bilinear resize (224 pretrained, 256 finetuned), then a centre crop of `cropSize`.
    public var resizeShort: Int
    public var cropSize: Int
    public var wantAudio: Bool
    public var wantVideo: Bool
    /// Temporal crops per window: 1 (the middle clip) or 4 (the paper's multi-crop evaluation).
    public var crops: Int

    public init(
        sampleRate: Int = 16000,
        windowSeconds: Double = 10,
        hopSeconds: Double? = nil,
        frames: Int = 16,
        stride: Int = 4,
        fps: Double = 25,
        resizeShort: Int = 224,
        cropSize: Int = 224,
        wantAudio: Bool = true,
        wantVideo: Bool = true,
        crops: Int = 1
    ) {
        precondition(sampleRate > 0 && windowSeconds > 0 && (hopSeconds ?? 1) > 0, "clip policy: rates and times must be positive")
        precondition(frames > 0 && stride > 0 && fps > 0, "clip policy: frames, stride and fps must be positive")
        precondition(resizeShort >= cropSize && cropSize > 0, "clip policy: resizeShort must be at least cropSize")
        precondition(crops == 1 || crops == 4, "clip policy: crops is 1 or 4")
        self.sampleRate = sampleRate
        self.windowSeconds = windowSeconds
        self.hopSeconds = hopSeconds ?? windowSeconds
        self.frames = frames
        self.stride = stride
        self.fps = fps
        self.resizeShort = resizeShort
        self.cropSize = cropSize
        self.wantAudio = wantAudio
        self.wantVideo = wantVideo
        self.crops = crops
    }

    /// Samples in one window's waveform.
    public var windowSamples: Int { Int((windowSeconds * Double(sampleRate)).rounded()) }
    /// Samples between window starts.
    public var hopSamples: Int { max(1, Int((hopSeconds * Double(sampleRate)).rounded())) }
}
