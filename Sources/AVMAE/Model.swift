import Foundation

/// A loaded AV-MAE bundle: immutable weights (memory-mapped) plus the blocks that read them.
/// Thread-safety: `Model` is never written after init and may be shared; each concurrent caller brings its own
/// `Workspace`.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    public let labels: [Label]
    /// Number of float parameters the model reads (every tensor in the bundle, since unused ones are refused).
    public let parameterCount: Int

    /// The engine and precision the encoder's products run on (logged at start-up, reported by `bench`).
    public let compute: ComputeEngine
    /// Bytes of weights prepared at load and held outside the bundle's mapping (oneDNN's int8/bf16 copies).
    public let preparedWeightBytes: Int

    private let store: WeightStore  // owns the mapping every layer's weights point into
    private let frontend: LogMelFrontend
    private let audioEmbedding: AudioPatchEmbedding?
    private let videoEmbedding: VideoTubeletEmbedding?
    private let encoder: any Encoder
    private let head: ClassifierHead?

    /// Loads and validates a bundle folder (config.json, model.safetensors, labels.csv).
    /// `precision` other than fp32 prepares the encoder's weights for oneDNN at load (PreparedWeight).
    public convenience init(bundle: URL, precision: Precision = .fp32) throws {
        let configURL = bundle.appendingPathComponent("config.json")
        guard let configData = try? Data(contentsOf: configURL) else { throw BundleError.missingFile(configURL.path) }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: configData)
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError.invalidConfig(field: "(file)", "is not valid JSON for a bundle config: \(error)")
        }
        let weightsPath = bundle.appendingPathComponent("model.safetensors").path
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw BundleError.missingFile(weightsPath) }
        let labelsURL = bundle.appendingPathComponent("labels.csv")
        var labels = [Label]()
        if let text = try? String(contentsOf: labelsURL, encoding: .utf8) {
            labels = try LabelsFile.parse(text)
        } else if config.kind == .finetuned {
            throw BundleError.missingFile(labelsURL.path)
        }
        try self.init(config: config, weights: SafeTensorsFile(path: weightsPath), labels: labels, precision: precision)
    }

    public convenience init(config: ModelConfig, weights: SafeTensorsFile, labels: [Label], precision: Precision = .fp32) throws {
        let store = WeightStore(file: weights, preparer: try WeightPreparer(precision: precision))
        try self.init(config: config, store: store, labels: labels)
        // The copies preparation made (q/k/v joined, oneDNN's int8/bf16) are all the encoder reads of those kernels.
        weights.release(store.copied)
    }

    /// The tensors (name, shape, fan-in) a bundle for `config` must hold, found by building the model against a
    /// recording store: the layer code stays the one place that knows the names.
    static func tensorShapes(for config: ModelConfig) throws -> [(name: String, shape: [Int], fanIn: Int)] {
        let store = WeightStore(file: nil)
        _ = try Model(config: config, store: store, labels: (0..<config.numClasses).map { Label(index: $0, mid: "", name: "") })
        return store.recorded
    }

    private init(config: ModelConfig, store: WeightStore, labels: [Label]) throws {
        try config.validate()
        if config.kind == .finetuned, labels.count != config.numClasses {
            throw BundleError.invalidLabels("has \(labels.count) classes but the classifier head has \(config.numClasses)")
        }
        self.config = config
        self.labels = labels
        self.store = store
        frontend = LogMelFrontend(config.frontend)
        let root = store.scope("")
        let d = config.hiddenSize
        // Stem names differ between pretraining and MBT and between released checkpoints (spec Part A.2).
        func stem(_ names: [String]) -> WeightScope { root.scope(names.first { store.has("\($0)/kernel") } ?? names[0]) }
        audioEmbedding = config.modalities.contains(.audio)
            ? try AudioPatchEmbedding(stem(["embedding_spectrogram", "embedding_spec"]), dim: d) : nil
        videoEmbedding = config.modalities.contains(.video)
            ? try VideoTubeletEmbedding(stem(config.kind == .finetuned ? ["embedding", "embedding_rgb"] : ["embedding_rgb", "embedding"]), dim: d) : nil
        switch config.encoder {
        case .mbt: encoder = try MBTEncoder(root, config: config)
        case .midFusion, .separate: encoder = try PretrainedEncoder(root, config: config)
        }
        head = config.kind == .finetuned
            ? try ClassifierHead(root.scope("ProjectionHeadAndClassifier_0"), dim: d, classes: config.numClasses) : nil
        let unused = store.unused()
        guard unused.isEmpty else { throw BundleError.unusedTensors(unused) }
        parameterCount = store.parameterCount
        compute = store.preparer.engine
        preparedWeightBytes = store.preparedBytes
    }

    public func makeWorkspace() -> Workspace { Workspace() }

    /// Runs the model on whatever modalities the input carries (spec Part A.3 for a subset of an AV model).
    public func run(_ input: ModelInput, workspace ws: Workspace) throws -> ModelOutput {
        let batch = try checkBatch(input)
        var output = ModelOutput()
        var tokens = [Modality: TokenBatch]()
        let extra = encoder.extraTokens, d = config.hiddenSize

        if input.waveform != nil || input.spectrogram != nil {
            guard let embed = audioEmbedding else { throw ModelError.unsupportedModality(.audio, model: config.modalities) }
            let (spectrogram, frames) = try audioFeatures(input, batch: batch, ws)
            if input.waveform != nil {
                output.logMel = Tensor(shape: [batch, frames, config.frontend.melBins], data: spectrogram.toArray())
            }
            let count = PatchGeometry.audioTokens(frames: frames, melBins: config.frontend.melBins)
            ws.audioTokens.reserve(batch * (count + extra) * d)
            let x = TokenBatch(ws.audioTokens, batch: batch, tokens: count, dim: d)
            embed(spectrogram, batch: batch, frames: frames, into: x, ws)
            tokens[.audio] = x
        }
        if let frames = input.frames {
            guard let embed = videoEmbedding else { throw ModelError.unsupportedModality(.video, model: config.modalities) }
            let t = frames.shape[1]
            let count = PatchGeometry.videoTokens(frames: t)
            ws.videoTokens.reserve(batch * (count + extra) * d)
            let x = TokenBatch(ws.videoTokens, batch: batch, tokens: count, dim: d)
            embed(frames, batch: batch, into: x, ws)
            tokens[.video] = x
        }

        let encoded = encoder(tokens, ws)
        output.audioTokens = encoded[.audio]?.toTensor()
        output.videoTokens = encoded[.video]?.toTensor()
        output.logits = head?(encoded, ws)
        output.modalities = Modality.allCases.filter { encoded[$0] != nil }
        return output
    }

    /// Probabilities from logits: sigmoid for AudioSet (multi-label), softmax for VGGSound (single-label).
    public func scores(logits: Tensor) -> Tensor {
        var out = logits
        let classes = logits.shape.last ?? 0
        switch config.labelSet {
        case .vggsound:
            for b in 0..<(classes == 0 ? 0 : logits.count / classes) {
                let row = out.data[(b * classes)..<((b + 1) * classes)]
                let mx = row.max() ?? 0
                let exps = row.map { Foundation.exp($0 - mx) }
                let sum = exps.reduce(0, +)
                for (i, e) in exps.enumerated() { out.data[b * classes + i] = e / sum }
            }
        case .audioset, .none:
            out.data = logits.data.map { 1 / (1 + Foundation.exp(-$0)) }
        }
        return out
    }

    private func checkBatch(_ input: ModelInput) throws -> Int {
        var sizes = [Int]()
        if let w = input.waveform {
            guard w.shape.count == 2, w.shape[0] > 0 else { throw ModelError.badShape(input: "waveform", expected: "(batch, samples)", found: w.shape) }
            sizes.append(w.shape[0])
        }
        if let s = input.spectrogram {
            let mel = config.frontend.melBins
            guard (s.shape.count == 3 || (s.shape.count == 4 && s.shape[3] == 1)), s.shape[0] > 0, s.shape[2] == mel else {
                throw ModelError.badShape(input: "spectrogram", expected: "(batch, frames, \(mel)) or (batch, frames, \(mel), 1)", found: s.shape)
            }
            sizes.append(s.shape[0])
        }
        if let f = input.frames {
            let size = PatchGeometry.imageSize
            guard f.shape.count == 5, f.shape[0] > 0, f.shape[1] >= 2, f.shape[1] % 2 == 0,
                  f.shape[2] == size, f.shape[3] == size, f.shape[4] == 3 else {
                throw ModelError.badShape(input: "frames", expected: "(batch, T even >= 2, \(size), \(size), 3)", found: f.shape)
            }
            if case .bytes(let shape, let bytes) = f, bytes.count != shape.reduce(1, *) {
                throw ModelError.badShape(input: "frames", expected: "\(shape.reduce(1, *)) bytes for \(shape)", found: [bytes.count])
            }
            sizes.append(f.shape[0])
        }
        guard let batch = sizes.first else { throw ModelError.noInput }
        guard sizes.allSatisfy({ $0 == batch }) else { throw ModelError.batchMismatch(sizes) }
        return batch
    }

    /// The tokenizer's input as (batch * frames, mel) in workspace memory.
    private func audioFeatures(_ input: ModelInput, batch: Int, _ ws: Workspace) throws -> (Matrix, Int) {
        let mel = config.frontend.melBins, minimum = PatchGeometry.audioPatch
        if let s = input.spectrogram {
            let frames = s.shape[1]
            guard frames >= minimum else { throw ModelError.tooShort(input: "spectrogram", minimum: "\(minimum) frames") }
            let m = ws.logMel.matrix(batch * frames, mel)
            m.fill(from: s.data)
            return (m.readOnly, frames)
        }
        let w = input.waveform!, samples = w.shape[1]
        let frames = frontend.frameCount(samples: samples)
        guard frames >= minimum else {
            throw ModelError.tooShort(input: "waveform", minimum: "\(minimum) spectrogram frames (\(minimum * config.frontend.frameStep) samples)")
        }
        let m = ws.logMel.matrix(batch * frames, mel)
        w.data.withUnsafeBufferPointer { all in
            for b in 0..<batch {
                frontend(UnsafeBufferPointer(rebasing: all[(b * samples)..<((b + 1) * samples)]), into: m.rows(b * frames, frames), ws)
            }
        }
        return (m.readOnly, frames)
    }
}
