import AVMAE

/// Which of the model's branches a request asks for. `auto` means: whatever both the clip and the model have.
public enum ModalityChoice: String, Sendable, CaseIterable {
    case auto, audio, video, audiovisual

    /// The modalities this choice would like, before the clip is looked at.
    func wanted(from model: [Modality]) -> Set<Modality> {
        switch self {
        case .auto, .audiovisual: return Set(model)
        case .audio: return [.audio]
        case .video: return [.video]
        }
    }

    /// Whether a request with this choice can be answered from `used`, the wanted modalities the clip has.
    func isSatisfied(by used: Set<Modality>) -> Bool {
        switch self {
        case .auto, .audio, .video: return !used.isEmpty  // `wanted` is already just the one asked for
        case .audiovisual: return used.count == 2
        }
    }
}

/// How per-window probabilities become one clip-level score.
public enum Aggregation: String, Sendable, CaseIterable {
    case mean, max
}

/// Temporal crops per window; with four, the logits of the crops are averaged (upstream's multi-crop eval).
public enum CropCount: Int, Sendable, CaseIterable {
    case one = 1, four = 4
}

public struct ClassifyOptions: Sendable, Equatable {
    public var topK: Int = 5
    /// Labels scoring below this are left out of the answer, even inside the top k.
    public var threshold: Float?
    public var modality: ModalityChoice = .auto
    /// Return the per-window timeline as well as the aggregate.
    public var timeline: Bool = false
    public var crops: CropCount = .one
    public var aggregation: Aggregation = .mean

    public init() {}
}

public struct EmbedOptions: Sendable, Equatable {
    public var modality: ModalityChoice = .auto
    /// Return every encoder token per window, not only the pooled mean.
    public var tokens: Bool = false

    public init() {}
}

/// The model's outputs themselves, unranked (the Open Inference Protocol's tensors).
public struct OutputOptions: Sendable, Equatable {
    public var modality: ModalityChoice = .auto
    /// Pool the encoder tokens into per-modality embeddings as well as the logits.
    public var embeddings: Bool = false

    public init() {}
}

public enum ClipTask: Sendable, Equatable {
    case classify(ClassifyOptions)
    case embed(EmbedOptions)
    case outputs(OutputOptions)

    var modality: ModalityChoice {
        switch self {
        case .classify(let options): return options.modality
        case .embed(let options): return options.modality
        case .outputs(let options): return options.modality
        }
    }

    var crops: CropCount {
        switch self {
        case .classify(let options): return options.crops
        case .embed, .outputs: return .one
        }
    }
}

/// One uploaded clip and what to do with it. Built by the HTTP layer from the request line, headers and body.
public struct ClipRequest: Sendable {
    public var id: String
    public var bytes: [UInt8]
    public var task: ClipTask
    /// The client's deadline for the whole request (decode, queue and inference), counted from `submit`; the
    /// service never waits longer than its own `requestTimeoutSeconds`, whatever is asked here.
    public var timeoutSeconds: Double?

    public init(id: String, bytes: [UInt8], task: ClipTask, timeoutSeconds: Double? = nil) {
        self.id = id
        self.bytes = bytes
        self.task = task
        self.timeoutSeconds = timeoutSeconds
    }
}

/// Model inputs that skip the media decoder: `batch` rows, each one model window at the shapes `ModelInfo`
/// gives. Audio is a waveform (which goes through the bundle's log-mel frontend) or a spectrogram, not both.
public struct TensorRequest: Sendable {
    public var id: String
    public var batch: Int
    public var waveform: [Float]?     // (batch, windowSamples)
    public var spectrogram: [Float]?  // (batch, spectrogramShape[0], spectrogramShape[1])
    public var frames: [UInt8]?       // (batch, frames, 224, 224, 3) 8-bit RGB
    public var embeddings: Bool
    public var timeoutSeconds: Double?

    public init(id: String, batch: Int, waveform: [Float]? = nil, spectrogram: [Float]? = nil, frames: [UInt8]? = nil,
                embeddings: Bool, timeoutSeconds: Double? = nil) {
        self.id = id
        self.batch = batch
        self.waveform = waveform
        self.spectrogram = spectrogram
        self.frames = frames
        self.embeddings = embeddings
        self.timeoutSeconds = timeoutSeconds
    }
}
