import AVMAE

/// What the server needs to know about the loaded model, without touching its weights.
public struct ModelInfo: Sendable {
    public var name: String
    public var kind: ModelKind
    public var modalities: [Modality]
    public var labelSet: LabelSet
    public var labels: [Label]
    public var numClasses: Int
    public var clipSeconds: Double
    public var frames: Int
    public var parameterCount: Int
    /// Waveform samples per window, the audio row length. // (samples)
    public var windowSamples: Int
    /// Bytes in one video crop. // (frames * 224 * 224 * 3)
    public var videoRowLength: Int
    /// The shape of one spectrogram row, the frontend's output for one window. // (frames, mel bins)
    public var spectrogramShape: [Int] = []
    /// Width of the encoder's tokens, the length of a pooled embedding.
    public var hiddenSize = 0
    /// Engine and precision of the encoder's products, e.g. "int8 on oneDNN 2.6.3 (brg:avx512_core_vnni)".
    public var compute = "fp32 on OpenBLAS"
    /// What tells one set of weights from another in answers and metrics: for a bundle, the first 12 hex digits
    /// of the SHA-256 over everything that changes an answer (`BundleDigest`). Empty for models not from a bundle.
    public var version = ""
    /// The label names are stand-ins (the demo bundle, a checkpoint converted with --placeholder-labels).
    public var placeholderLabels: Bool { labels.contains { Label.isPlaceholder($0) } }

    public var hasHead: Bool { numClasses > 0 && labelSet != .none }

    public init(name: String, kind: ModelKind, modalities: [Modality], labelSet: LabelSet, labels: [Label],
                numClasses: Int, clipSeconds: Double, frames: Int, parameterCount: Int,
                windowSamples: Int, videoRowLength: Int) {
        self.name = name
        self.kind = kind
        self.modalities = modalities
        self.labelSet = labelSet
        self.labels = labels
        self.numClasses = numClasses
        self.clipSeconds = clipSeconds
        self.frames = frames
        self.parameterCount = parameterCount
        self.windowSamples = windowSamples
        self.videoRowLength = videoRowLength
    }
}

/// One model input row: one window (and one crop) of one clip.
public struct BatchRow: Sendable {
    public var waveform: [Float]?  // (windowSamples)
    /// Audio that skips the log-mel frontend, in place of `waveform`. // (spectrogramFrames, melBins)
    public var spectrogram: [Float]?
    public var frames: [UInt8]?    // (frames, 224, 224, 3) 8-bit RGB
    /// Copy the encoder tokens out for this row (embedding requests); classification only needs logits.
    public var keepTokens: Bool

    public init(waveform: [Float]?, spectrogram: [Float]? = nil, frames: [UInt8]?, keepTokens: Bool) {
        self.waveform = waveform
        self.spectrogram = spectrogram
        self.frames = frames
        self.keepTokens = keepTokens
    }
}

public struct RowOutput: Sendable {
    public var logits: [Float]?  // (C)
    public var tokens: [Modality: TokenMatrix]

    public init(logits: [Float]?, tokens: [Modality: TokenMatrix]) {
        self.logits = logits
        self.tokens = tokens
    }
}

/// The model behind the server. The real one wraps `AVMAE.Model`; tests use a fake so the batching shell
/// can be exercised without weights.
public protocol InferenceBackend: Sendable {
    var info: ModelInfo { get }
    /// Makes the per-thread scratch; called once, on the inference thread that will use it.
    func makeSession() -> InferenceSession
    /// Logits to probabilities: sigmoid (AudioSet, multi-label) or softmax (VGGSound). // [C] -> [C]
    func scores(logits: [Float]) -> [Float]
}

/// Runs batches; owns mutable scratch, so it is used by one thread only.
public protocol InferenceSession: AnyObject {
    func run(_ rows: [BatchRow], kind: InputKind) throws -> [RowOutput]
}
