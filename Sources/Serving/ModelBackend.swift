import AVMAE
import Foundation

/// The real backend: an `AVMAE.Model` loaded from a bundle. Rows are stacked into one batched `ModelInput`
/// per call, and the batch outputs are cut back into rows.
public struct ModelBackend: InferenceBackend {
    public let model: Model
    public let info: ModelInfo

    /// `name`: what requests call it (default: the bundle's config name); `version`: see `ModelInfo.version`.
    public init(model: Model, name: String? = nil, version: String = "") {
        self.model = model
        let config = model.config
        var info = ModelInfo(name: name ?? config.name, kind: config.kind, modalities: config.modalities,
                         labelSet: config.labelSet, labels: model.labels, numClasses: config.numClasses,
                         clipSeconds: config.clipSeconds, frames: config.frames,
                         parameterCount: model.parameterCount, windowSamples: config.windowSamples,
                         videoRowLength: config.frames * Self.cropSize * Self.cropSize * 3)
        info.compute = "\(model.compute)"
        info.version = version
        info.spectrogramShape = [config.spectrogramFrames, config.frontend.melBins]
        info.hiddenSize = config.hiddenSize
        self.info = info
    }

    /// Video frames are centre-cropped to this square (spec Part A.4).
    public static let cropSize = 224

    public func makeSession() -> InferenceSession {
        ModelSession(model: model, workspace: model.makeWorkspace())
    }

    /// Rows stacked into one batched model input: the serving path's, which `run --clip` reuses.
    public static func input(_ rows: [BatchRow], kind: InputKind, config: ModelConfig) -> ModelInput {
        var input = ModelInput()
        if kind != .video, rows.first?.spectrogram != nil {
            // (B, frames, mel)
            input.spectrogram = Tensor(shape: [rows.count, config.spectrogramFrames, config.frontend.melBins],
                                       data: rows.flatMap { $0.spectrogram! })
        } else if kind != .video {
            // (B, samples)
            input.waveform = Tensor(shape: [rows.count, config.windowSamples], data: rows.flatMap { $0.waveform! })
        }
        if kind != .audio {
            // (B, T, 224, 224, 3)
            input.frames = .bytes(shape: [rows.count, config.frames, cropSize, cropSize, 3], rows.flatMap { $0.frames! })
        }
        return input
    }

    public func scores(logits: [Float]) -> [Float] {
        model.scores(logits: Tensor(shape: [1, logits.count], data: logits)).data
    }
}

/// The model plus the scratch one inference thread reuses across batches. Not thread-safe, by design.
final class ModelSession: InferenceSession {
    private let model: Model
    private let workspace: Workspace

    init(model: Model, workspace: Workspace) {
        self.model = model
        self.workspace = workspace
    }

    /// The model takes one audio form per call, so a batch that mixes waveform and spectrogram rows runs as two.
    func run(_ rows: [BatchRow], kind: InputKind) throws -> [RowOutput] {
        let spectrogramRows = rows.indices.filter { rows[$0].spectrogram != nil }
        guard !spectrogramRows.isEmpty, spectrogramRows.count < rows.count else { return try runStacked(rows, kind: kind) }
        let waveformRows = rows.indices.filter { rows[$0].spectrogram == nil }
        var outputs = [RowOutput?](repeating: nil, count: rows.count)
        for group in [waveformRows, spectrogramRows] {
            for (index, output) in zip(group, try runStacked(group.map { rows[$0] }, kind: kind)) { outputs[index] = output }
        }
        return outputs.map { $0! }
    }

    private func runStacked(_ rows: [BatchRow], kind: InputKind) throws -> [RowOutput] {
        let batch = rows.count
        let output = try model.run(ModelBackend.input(rows, kind: kind, config: model.config), workspace: workspace)
        return (0..<batch).map { b in
            var tokens: [Modality: TokenMatrix] = [:]
            if rows[b].keepTokens {
                for (modality, tensor) in [(Modality.audio, output.audioTokens), (.video, output.videoTokens)] {
                    guard let tensor else { continue }
                    tokens[modality] = Self.row(b, of: tensor)
                }
            }
            let logits = output.logits.map { logits -> [Float] in
                let classes = logits.shape[1]  // (B, C)
                return Array(logits.data[(b * classes)..<((b + 1) * classes)])
            }
            return RowOutput(logits: logits, tokens: tokens)
        }
    }

    /// Row `b` of a (B, N, D) token tensor as an (N, D) matrix.
    private static func row(_ b: Int, of tensor: Tensor) -> TokenMatrix {
        let n = tensor.shape[1], d = tensor.shape[2]
        return TokenMatrix(rows: n, cols: d, data: Array(tensor.data[(b * n * d)..<((b + 1) * n * d)]))
    }
}
