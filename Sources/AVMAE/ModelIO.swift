/// What a caller hands the model. Audio comes either as a waveform (through the bundle's log-mel frontend) or
/// as an already-normalised spectrogram (upstream's model input); video as 8-bit or [-1, 1] frames.
public struct ModelInput: Sendable {
    /// (batch, samples) at frontend.sample_rate
    public var waveform: Tensor?
    /// (batch, frames, mel) or (batch, frames, mel, 1), after normalisation
    public var spectrogram: Tensor?
    /// (batch, T, 224, 224, 3) RGB, T even
    public var frames: Frames?

    public init(waveform: Tensor? = nil, spectrogram: Tensor? = nil, frames: Frames? = nil) {
        self.waveform = waveform
        self.spectrogram = spectrogram
        self.frames = frames
    }
}

/// Video frames as decoding gives them (bytes) or as upstream's model takes them (float32 in [-1, 1]). Bytes are
/// a quarter of the memory from the decoder through the batch; the tubelet embedding converts each as it reads it,
/// with upstream's float32(u8) / 255 * 2 - 1 evaluated left to right, so both forms give the same numbers.
public enum Frames: Sendable {
    case bytes(shape: [Int], [UInt8])
    case floats(Tensor)

    public var shape: [Int] {
        switch self {
        case .bytes(let shape, _): return shape
        case .floats(let tensor): return tensor.shape
        }
    }
}

public struct ModelOutput: Sendable {
    /// (batch, frames, mel): the normalised log-mel the tokenizer saw, when the input was a waveform
    public var logMel: Tensor?
    /// (batch, audio tokens, D): final normalised encoder tokens (pretrained output; pre-classifier for MBT)
    public var audioTokens: Tensor?
    /// (batch, video tokens, D)
    public var videoTokens: Tensor?
    /// (batch, classes), raw logits (finetuned models only)
    public var logits: Tensor?
    /// Which modalities actually ran.
    public var modalities: [Modality] = []
}

/// Why a model call was refused. The model never crashes on a bad input shape.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case noInput
    case unsupportedModality(Modality, model: [Modality])
    case badShape(input: String, expected: String, found: [Int])
    case batchMismatch([Int])
    case tooShort(input: String, minimum: String)

    public var description: String {
        switch self {
        case .noInput: return "no audio or video input was given"
        case .unsupportedModality(let m, let have):
            return "this model has no \(m.rawValue) branch (it takes \(have.map(\.rawValue).joined(separator: " + ")))"
        case .badShape(let input, let expected, let found): return "\(input) must be \(expected), got \(found)"
        case .batchMismatch(let sizes): return "audio and video batch sizes differ: \(sizes)"
        case .tooShort(let input, let minimum): return "\(input) is too short: need at least \(minimum)"
        }
    }
}
