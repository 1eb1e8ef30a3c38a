import Foundation

public enum Modality: String, Codable, Sendable, CaseIterable {
    case audio, video
}

public enum ModelKind: String, Codable, Sendable {
    /// Self-supervised encoder: returns tokens per modality (spec Part B §6).
    case pretrained
    /// MBT classifier: returns logits (spec Part B §7).
    case finetuned
}

/// How modality towers are combined (spec Part B §5.3, §5.4).
public enum EncoderKind: String, Codable, Sendable {
    /// Finetuned MBT: per-modality towers, bottleneck fusion from `fusion_layer`, one shared final LayerNorm.
    case mbt
    /// Pretrained `separate_encoders_and_concat`: towers with their own norms, then joint blocks and a joint norm.
    case midFusion = "mid_fusion"
    /// Pretrained `separate_encoders`: independent towers, each with its own norm.
    case separate
}

public enum LabelSet: String, Codable, Sendable {
    /// 527 classes, multi-label: sigmoid scores.
    case audioset
    /// 309 classes, single-label: softmax scores.
    case vggsound
    /// Pretrained encoders have no classes.
    case none
}

public enum WindowFunction: String, Codable, Sendable {
    case hann, hamming
}

public enum SpectrumKind: String, Codable, Sendable {
    case magnitude, power
}

/// The waveform -> log-mel frontend (spec Part A.1). Every number is bundle data: upstream's frontend lives
/// only inside the released SavedModels, so nothing here is hard-coded into the computation.
public struct FrontendConfig: Codable, Sendable, Equatable {
    public var sampleRate: Int = 16000
    public var frameLength: Int = 400
    public var frameStep: Int = 160
    public var fftLength: Int = 512
    public var window: WindowFunction = .hamming
    public var padEnd: Bool = true
    public var spectrum: SpectrumKind = .magnitude
    public var melBins: Int = 128
    public var lowerHz: Double = 125
    public var upperHz: Double = 7500
    public var logOffset: Double = 0.001
    public var mean: Double = 0
    public var std: Double = 1

    enum CodingKeys: String, CodingKey {
        case sampleRate = "sample_rate", frameLength = "frame_length", frameStep = "frame_step"
        case fftLength = "fft_length", window, padEnd = "pad_end", spectrum, melBins = "mel_bins"
        case lowerHz = "lower_hz", upperHz = "upper_hz", logOffset = "log_offset", mean, std
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = FrontendConfig()
        sampleRate = try c.decodeIfPresent(Int.self, forKey: .sampleRate) ?? d.sampleRate
        frameLength = try c.decodeIfPresent(Int.self, forKey: .frameLength) ?? d.frameLength
        frameStep = try c.decodeIfPresent(Int.self, forKey: .frameStep) ?? d.frameStep
        fftLength = try c.decodeIfPresent(Int.self, forKey: .fftLength) ?? d.fftLength
        window = try c.decodeIfPresent(WindowFunction.self, forKey: .window) ?? d.window
        padEnd = try c.decodeIfPresent(Bool.self, forKey: .padEnd) ?? d.padEnd
        spectrum = try c.decodeIfPresent(SpectrumKind.self, forKey: .spectrum) ?? d.spectrum
        melBins = try c.decodeIfPresent(Int.self, forKey: .melBins) ?? d.melBins
        lowerHz = try c.decodeIfPresent(Double.self, forKey: .lowerHz) ?? d.lowerHz
        upperHz = try c.decodeIfPresent(Double.self, forKey: .upperHz) ?? d.upperHz
        logOffset = try c.decodeIfPresent(Double.self, forKey: .logOffset) ?? d.logOffset
        mean = try c.decodeIfPresent(Double.self, forKey: .mean) ?? d.mean
        std = try c.decodeIfPresent(Double.self, forKey: .std) ?? d.std
        try validate()
    }

    func validate() throws {
        func fail(_ key: CodingKeys, _ why: String) -> BundleError { .invalidConfig(field: "frontend.\(key.rawValue)", why) }
        guard sampleRate > 0 else { throw fail(.sampleRate, "must be positive") }
        guard frameLength > 0, frameStep > 0 else { throw fail(.frameLength, "frame_length and frame_step must be positive") }
        guard fftLength >= frameLength else { throw fail(.fftLength, "must be at least frame_length (\(frameLength))") }
        guard melBins > 0 else { throw fail(.melBins, "must be positive") }
        guard lowerHz >= 0, upperHz > lowerHz, upperHz <= Double(sampleRate) / 2 else {
            throw fail(.upperHz, "need 0 <= lower_hz < upper_hz <= sample_rate/2")
        }
        guard logOffset > 0 else { throw fail(.logOffset, "must be positive") }
        guard std > 0 else { throw fail(.std, "must be positive") }
    }
}

/// A bundle's `config.json` (format in models/README.md). Architecture numbers are checked against the
/// weights when the bundle loads.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var formatVersion: Int = 1
    public var name: String
    public var kind: ModelKind
    public var encoder: EncoderKind
    public var modalities: [Modality]
    public var hiddenSize: Int
    public var numHeads: Int
    public var mlpDim: Int
    public var numLayers: Int
    public var jointLayers: Int = 0
    public var fusionLayer: Int = 0
    public var bottlenecks: Int = 4
    public var numClasses: Int = 0
    public var labelSet: LabelSet = .none
    public var clipSeconds: Double = 10
    public var frames: Int = 16
    public var stride: Int = 4
    public var fps: Double = 25
    public var resizeShort: Int = 224
    public var frontend: FrontendConfig = FrontendConfig()

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, kind, encoder, modalities
        case hiddenSize = "hidden_size", numHeads = "num_heads", mlpDim = "mlp_dim", numLayers = "num_layers"
        case jointLayers = "joint_layers", fusionLayer = "fusion_layer", bottlenecks, numClasses = "num_classes"
        case labelSet = "label_set", clipSeconds = "clip_seconds", frames, stride, fps
        case resizeShort = "resize_short", frontend
    }

    public init(name: String, kind: ModelKind, encoder: EncoderKind, modalities: [Modality], hiddenSize: Int,
                numHeads: Int, mlpDim: Int, numLayers: Int) {
        self.name = name
        self.kind = kind
        self.encoder = encoder
        self.modalities = modalities
        self.hiddenSize = hiddenSize
        self.numHeads = numHeads
        self.mlpDim = mlpDim
        self.numLayers = numLayers
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func required<T: Decodable>(_ key: CodingKeys) throws -> T {
            guard let v = try c.decodeIfPresent(T.self, forKey: key) else {
                throw BundleError.invalidConfig(field: key.rawValue, "is missing")
            }
            return v
        }
        formatVersion = try c.decodeIfPresent(Int.self, forKey: .formatVersion) ?? 1
        name = try required(.name)
        kind = try required(.kind)
        encoder = try required(.encoder)
        modalities = try required(.modalities)
        hiddenSize = try required(.hiddenSize)
        numHeads = try required(.numHeads)
        mlpDim = try required(.mlpDim)
        numLayers = try required(.numLayers)
        jointLayers = try c.decodeIfPresent(Int.self, forKey: .jointLayers) ?? 0
        fusionLayer = try c.decodeIfPresent(Int.self, forKey: .fusionLayer) ?? 0
        bottlenecks = try c.decodeIfPresent(Int.self, forKey: .bottlenecks) ?? 4
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses) ?? 0
        labelSet = try c.decodeIfPresent(LabelSet.self, forKey: .labelSet) ?? .none
        clipSeconds = try c.decodeIfPresent(Double.self, forKey: .clipSeconds) ?? 10
        frames = try c.decodeIfPresent(Int.self, forKey: .frames) ?? 16
        stride = try c.decodeIfPresent(Int.self, forKey: .stride) ?? 4
        fps = try c.decodeIfPresent(Double.self, forKey: .fps) ?? 25
        resizeShort = try c.decodeIfPresent(Int.self, forKey: .resizeShort) ?? 224
        frontend = try c.decodeIfPresent(FrontendConfig.self, forKey: .frontend) ?? FrontendConfig()
        try validate()
    }

    public func validate() throws {
        func fail(_ key: CodingKeys, _ why: String) -> BundleError { .invalidConfig(field: key.rawValue, why) }
        guard formatVersion == 1 else { throw fail(.formatVersion, "version \(formatVersion) is not supported (expected 1)") }
        guard !modalities.isEmpty, Set(modalities).count == modalities.count else {
            throw fail(.modalities, "must list audio and/or video once each")
        }
        guard hiddenSize > 0, numHeads > 0, hiddenSize % numHeads == 0 else {
            throw fail(.numHeads, "hidden_size (\(hiddenSize)) must be a positive multiple of num_heads (\(numHeads))")
        }
        guard mlpDim > 0, numLayers > 0 else { throw fail(.numLayers, "num_layers and mlp_dim must be positive") }
        switch (kind, encoder) {
        case (.finetuned, .mbt):
            guard numClasses > 0 else { throw fail(.numClasses, "a finetuned model needs num_classes > 0") }
            if modalities.count == 2 {
                guard (0...numLayers).contains(fusionLayer) else {
                    throw fail(.fusionLayer, "\(fusionLayer) is outside 0...\(numLayers)")
                }
                guard bottlenecks > 0 else { throw fail(.bottlenecks, "an audio+video MBT model needs bottleneck tokens") }
            }
        case (.pretrained, .midFusion), (.pretrained, .separate):
            guard numClasses == 0 else { throw fail(.numClasses, "a pretrained encoder has no classifier") }
        default:
            throw fail(.encoder, "\(encoder.rawValue) does not go with kind \(kind.rawValue)")
        }
        guard frames > 0, frames % 2 == 0 else { throw fail(.frames, "must be a positive even number (tubelets span 2 frames)") }
        guard stride > 0, fps > 0, resizeShort >= 224 else { throw fail(.resizeShort, "stride, fps must be positive and resize_short >= 224") }
        guard clipSeconds > 0 else { throw fail(.clipSeconds, "must be positive") }
        try frontend.validate()
        guard frontend.melBins % PatchGeometry.audioPatch == 0 else {
            throw BundleError.invalidConfig(field: "frontend.mel_bins", "must be a multiple of \(PatchGeometry.audioPatch)")
        }
    }

    public var headDim: Int { hiddenSize / numHeads }

    /// Samples in one model window at the frontend's rate (160000 for 10 s at 16 kHz).
    public var windowSamples: Int { Int((clipSeconds * Double(frontend.sampleRate)).rounded()) }

    /// Spectrogram frames fed to the tokenizer for one window (1000 for 10 s at a 160-sample hop).
    public var spectrogramFrames: Int { windowSamples / frontend.frameStep }

    public var audioTokens: Int { PatchGeometry.audioTokens(frames: spectrogramFrames, melBins: frontend.melBins) }
    public var videoTokens: Int { PatchGeometry.videoTokens(frames: frames) }
}
