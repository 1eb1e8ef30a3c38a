import AVMAE

public struct LabelScore: Sendable, Equatable {
    public var index: Int
    public var mid: String
    public var name: String
    public var score: Float
}

public struct WindowScores: Sendable, Equatable {
    public var index: Int
    public var startSeconds: Double
    public var labels: [LabelScore]
}

/// Where a request's time went, in seconds.
public struct Timings: Sendable, Equatable {
    public var decode: Double = 0
    public var queue: Double = 0
    public var inference: Double = 0
    public var total: Double = 0
}

public struct ClassifyResult: Sendable {
    public var model: String
    public var modelVersion: String
    public var labelSet: LabelSet
    public var modalities: [Modality]
    public var durationSeconds: Double
    public var windowsUsed: Int
    public var aggregation: Aggregation
    public var labels: [LabelScore]
    public var timeline: [WindowScores]?
    public var timings: Timings
}

/// A row-major [rows, cols] matrix of encoder tokens.
public struct TokenMatrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var data: [Float]

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(rows * cols == data.count, "TokenMatrix: \(rows)x\(cols) does not hold \(data.count) values")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// Mean over tokens, the pooled embedding. // (cols)
    public func meanOfRows() -> [Float] {
        var sum = [Float](repeating: 0, count: cols)
        for r in 0..<rows {
            for c in 0..<cols { sum[c] += data[r * cols + c] }
        }
        let scale = 1 / Float(max(rows, 1))
        return sum.map { $0 * scale }
    }
}

public struct WindowEmbedding: Sendable {
    public var index: Int
    public var startSeconds: Double
    /// Pooled (mean of tokens) per modality. // (D)
    public var pooled: [Modality: [Float]]
    /// Full token matrices per modality, only when asked for.
    public var tokens: [Modality: TokenMatrix]?
}

public struct EmbedResult: Sendable {
    public var model: String
    public var modelVersion: String
    public var modalities: [Modality]
    public var durationSeconds: Double
    /// Mean over windows of the pooled embeddings, per modality. // (D)
    public var pooled: [Modality: [Float]]
    public var windows: [WindowEmbedding]
    public var timings: Timings
}

/// The model's outputs per row, unranked. A clip is one row (its windows averaged: logits, probabilities and
/// pooled embeddings each as a mean over windows, so the probabilities are /v1/classify's mean scores); a
/// `TensorRequest` has one row per input row.
public struct RawOutputs: Sendable {
    public var model: String
    public var rows: Int
    public var modalities: [Modality]
    public var logits: [Float]?         // (rows, C), nil for a model without a head
    public var probabilities: [Float]?  // (rows, C)
    /// Mean of each modality's encoder tokens, when asked for. // modality -> (rows, D)
    public var embeddings: [Modality: [Float]]
    public var timings: Timings
}

extension RawOutputs {
    /// Several clips' answers as one, row after row in order (the protocol's batch of CLIP elements). An embedding
    /// is kept only if every part has it: the rows of a tensor must all be there.
    public static func stacked(_ parts: [RawOutputs]) -> RawOutputs {
        precondition(!parts.isEmpty, "stacking no outputs")
        let first = parts[0]
        guard parts.count > 1 else { return first }
        let modalities = first.modalities.filter { modality in parts.allSatisfy { $0.modalities.contains(modality) } }
        func joined(_ values: (RawOutputs) -> [Float]?) -> [Float]? {
            let each = parts.compactMap(values)
            return each.count == parts.count ? each.flatMap { $0 } : nil
        }
        var embeddings: [Modality: [Float]] = [:]
        for modality in first.embeddings.keys { embeddings[modality] = joined { $0.embeddings[modality] } }
        // The clips ran side by side: the request took as long as its slowest clip.
        let timings = Timings(decode: parts.map(\.timings.decode).max() ?? 0, queue: parts.map(\.timings.queue).max() ?? 0,
                              inference: parts.map(\.timings.inference).max() ?? 0, total: parts.map(\.timings.total).max() ?? 0)
        return RawOutputs(model: first.model, rows: parts.reduce(0) { $0 + $1.rows }, modalities: modalities,
                          logits: joined(\.logits), probabilities: joined(\.probabilities), embeddings: embeddings,
                          timings: timings)
    }
}

public enum ClipResult: Sendable {
    case classify(ClassifyResult)
    case embed(EmbedResult)
    case outputs(RawOutputs)
}
