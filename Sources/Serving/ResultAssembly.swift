import AVMAE

/// Pure functions from per-row model outputs to the answer: crop averaging, logits to scores, aggregation
/// over windows, top-k; and pooling for embeddings. Rows arrive window-major: row = window * crops + crop.
public enum ResultAssembly {
    /// Per-window probabilities. // windows x (C)
    public static func windowScores(_ outputs: [RowOutput], cropsPerWindow: Int, backend: InferenceBackend) -> [[Float]] {
        windowLogits(outputs, cropsPerWindow: cropsPerWindow).map { backend.scores(logits: $0) }
    }

    /// Per-window logits, the mean over the window's crops. // windows x (C)
    public static func windowLogits(_ outputs: [RowOutput], cropsPerWindow: Int) -> [[Float]] {
        stride(from: 0, to: outputs.count, by: cropsPerWindow).map { first in
            let crops = outputs[first..<(first + cropsPerWindow)].compactMap(\.logits)
            var mean = [Float](repeating: 0, count: crops.first?.count ?? 0)
            for logits in crops {
                for c in mean.indices { mean[c] += logits[c] }
            }
            let scale = 1 / Float(max(crops.count, 1))
            return mean.map { $0 * scale }
        }
    }

    /// One clip-level score per class. // (C)
    public static func aggregate(_ windows: [[Float]], by aggregation: Aggregation) -> [Float] {
        guard var result = windows.first else { return [] }
        for window in windows.dropFirst() {
            for c in result.indices {
                switch aggregation {
                case .mean: result[c] += window[c]
                case .max: result[c] = Swift.max(result[c], window[c])
                }
            }
        }
        if aggregation == .mean {
            let scale = 1 / Float(windows.count)
            result = result.map { $0 * scale }
        }
        return result
    }

    /// The `k` best labels at or above `threshold`, best first (ties by index, so answers are stable).
    public static func top(_ scores: [Float], k: Int, threshold: Float?, labels: [Label]) -> [LabelScore] {
        scores.indices
            .filter { threshold == nil || scores[$0] >= threshold! }
            .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            .prefix(k)
            .map { index in
                guard index < labels.count else {
                    return LabelScore(index: index, mid: "", name: "class \(index)", score: scores[index])
                }
                return LabelScore(index: index, mid: labels[index].mid, name: labels[index].name, score: scores[index])
            }
    }

    public static func embeddings(_ outputs: [RowOutput], windows: [DecodedWindow], modalities: [Modality],
                           keepTokens: Bool) -> (pooled: [Modality: [Float]], windows: [WindowEmbedding]) {
        let perWindow = zip(windows, outputs).map { window, output in
            let pooled = output.tokens.filter { modalities.contains($0.key) }.mapValues { $0.meanOfRows() }
            return WindowEmbedding(index: window.index, startSeconds: window.startSeconds, pooled: pooled,
                                   tokens: keepTokens ? output.tokens.filter { modalities.contains($0.key) } : nil)
        }
        var pooled: [Modality: [Float]] = [:]
        for modality in modalities {
            let vectors = perWindow.compactMap { $0.pooled[modality] }
            if !vectors.isEmpty { pooled[modality] = aggregate(vectors, by: .mean) }
        }
        return (pooled, perWindow)
    }
}
