import Foundation

/// Mutable scratch for one forward pass at a time. Weights live in `Model` and are never written; everything a
/// forward pass writes lives here. Buffers grow to the largest request a worker has seen and are then reused,
/// so a steady-state worker does not allocate per request.
///
/// Threading: a Workspace is used by one thread at a time (one per inference worker). `Model` is shared.
public final class Workspace {
    // Per-block scratch, (rows = batch * tokens).
    let normed = Buffer()      // (rows, D)
    let queryKeyValue = Buffer()  // (rows, 3D)
    let context = Buffer()     // (rows, D)
    let scores = Buffer()      // (tokens, tokens)
    let rowSums = Buffer()     // (tokens)
    let hidden = Buffer()      // (rows, mlp)
    // Tokenizers and frontend.
    let patches = Buffer()     // (rows, patch size)
    let spectrum = Buffer()    // (frames, 2 * bins)
    // Token sequences: one per modality, a joint one, and a spare for re-layouts.
    let audioTokens = Buffer()
    let videoTokens = Buffer()
    let jointTokens = Buffer()
    let bottleneck = Buffer()  // (batch * n, D)
    let bottleneckSum = Buffer()
    let pooled = Buffer()      // (batch, D)
    let logits = Buffer()      // (batch, C)
    let logMel = Buffer()      // (batch * frames, mel)
    let gemm = GemmScratch()   // low-precision engines: quantised activations, row scales, product
    private var positionTables = [PositionTableKey: [Float]]()

    private struct PositionTableKey: Hashable {
        let count: Int
        let dim: Int
    }

    public init() {}

    func tokens(for modality: Modality) -> Buffer {
        modality == .audio ? audioTokens : videoTokens
    }

    /// Upstream's fixed 1-D sinusoidal table for `count` tokens (spec Part B §4), cached per token count.
    func positionTable(count: Int, dim: Int) -> [Float] {
        let key = PositionTableKey(count: count, dim: dim)
        if let t = positionTables[key] { return t }
        let t = sinusoidalTable(count: count, dim: dim)
        positionTables[key] = t
        return t
    }
}

/// A batch of token sequences stored [batch][tokens][dim] in one buffer.
struct TokenBatch {
    let buffer: Buffer
    let batch: Int
    let tokens: Int
    let dim: Int

    init(_ buffer: Buffer, batch: Int, tokens: Int, dim: Int) {
        buffer.reserve(batch * tokens * dim)
        self.buffer = buffer
        self.batch = batch
        self.tokens = tokens
        self.dim = dim
    }

    /// (batch * tokens, dim)
    var all: MutableMatrix { MutableMatrix(base: buffer.pointer, rows: batch * tokens, cols: dim, ld: dim) }

    /// (tokens, dim) of batch item b
    func item(_ b: Int) -> MutableMatrix { all.rows(b * tokens, tokens) }

    func toTensor() -> Tensor {
        Tensor(shape: [batch, tokens, dim], data: all.readOnly.toArray())
    }
}

/// sinusoidal_init in scenic attention_layers: PE[p, 2k] = sin(p * div_k), PE[p, 2k+1] = cos(p * div_k),
/// div_k = exp(-2k ln(10000) / d), computed in float64 and rounded, interleaved (not half/half).
func sinusoidalTable(count: Int, dim: Int) -> [Float] {
    var table = [Float](repeating: 0, count: count * dim)
    for k in 0..<(dim / 2) {
        let div = Foundation.exp(-Double(2 * k) * Foundation.log(10000.0) / Double(dim))
        for p in 0..<count {
            table[p * dim + 2 * k] = Float(Foundation.sin(Double(p) * div))
            table[p * dim + 2 * k + 1] = Float(Foundation.cos(Double(p) * div))
        }
    }
    return table
}
