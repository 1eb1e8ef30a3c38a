/// The matrix products one encoder pass issues, shape by shape (what `Attention`, `MLP` and the tokenizers
/// call gemm with), so benchmarks can time sgemm alone on exactly the model's work.
public enum Cost {
    /// `batch` items of `tokens` tokens through `layers` blocks, plus a tokenizer with `patchSize` inputs.
    public static func encoderShapes(config c: ModelConfig, tokens n: Int, batch: Int, layers: Int, patchSize: Int) -> [BLAS.Shape] {
        let rows = batch * n, d = c.hiddenSize, dh = c.headDim, heads = c.numHeads
        return [
            BLAS.Shape(m: rows, k: patchSize, n: d),
            BLAS.Shape(m: rows, k: d, n: d, count: 4 * layers),               // query, key, value, out
            BLAS.Shape(m: rows, k: d, n: c.mlpDim, count: layers),            // Dense_0
            BLAS.Shape(m: rows, k: c.mlpDim, n: d, count: layers),            // Dense_1
            BLAS.Shape(m: n, k: dh, n: n, transposeB: true, count: batch * heads * layers),  // q · kᵀ
            BLAS.Shape(m: n, k: n, n: dh, count: batch * heads * layers),     // softmax · v
        ]
    }
}
