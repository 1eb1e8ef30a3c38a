/// MultiHeadDotProductAttention_0: full bidirectional self-attention, q scaled by 1/sqrt(Dh) (spec Part B §5.2).
/// Port of flax.linen.MultiHeadDotProductAttention as used by scenic/projects/mbt/model.py EncoderBlock
/// (google-research/scenic@4a38d475).
struct Attention {
    let queryKeyValue: Linear  // query, key and value side by side: kernel (D, 3 * H*Dh)
    let out: Linear            // kernel (H*Dh, D)
    let heads: Int
    let headDim: Int

    /// `input`: the LayerNorm whose output is `h` in `callAsFunction`.
    init(_ w: WeightScope, dim: Int, heads: Int, input: LayerNorm) throws {
        let headDim = dim / heads
        queryKeyValue = try Linear(concatenating: [w.scope("query"), w.scope("key"), w.scope("value")],
                                   kernelShape: [dim, heads, headDim], biasShape: [heads, headDim], input: input)
        out = try Linear(w.scope("out"), kernelShape: [heads, headDim, dim], biasShape: [dim])
        self.heads = heads
        self.headDim = headDim
    }

    /// residual += Attention(h); h is the LayerNorm_0 output, both (batch * tokens, D).
    func callAsFunction(_ h: Matrix, batch: Int, tokens: Int, residual: MutableMatrix, _ ws: Workspace) {
        let rows = batch * tokens, dim = heads * headDim
        let qkv = ws.queryKeyValue.matrix(rows, 3 * dim)  // (rows, [q | k | v])
        queryKeyValue(h, into: qkv, ws)
        let q = qkv.columns(0, dim), k = qkv.columns(dim, dim), v = qkv.columns(2 * dim, dim)
        q.scale(by: 1 / Float(headDim).squareRoot())
        let context = ws.context.matrix(rows, dim)
        let scores = ws.scores.matrix(tokens, tokens)
        let inverseSums = ws.rowSums.matrix(1, tokens)
        for b in 0..<batch {
            let qb = q.rows(b * tokens, tokens).readOnly, kb = k.rows(b * tokens, tokens).readOnly
            let vb = v.rows(b * tokens, tokens).readOnly, cb = context.rows(b * tokens, tokens)
            for head in 0..<heads {
                let cols = head * headDim
                // (tokens, tokens) = q_h · k_hᵀ; softmax over keys, its 1/sum applied after · v_h.
                gemm(qb.columns(cols, headDim), kb.columns(cols, headDim), transposeB: true, into: scores)
                softmaxNumeratorRows(scores, inverseSums: inverseSums.base)
                gemm(scores.readOnly, vb.columns(cols, headDim), into: cb.columns(cols, headDim))
                scaleRows(cb.columns(cols, headDim), by: inverseSums.base)
            }
        }
        out.accumulate(context.readOnly, into: residual, ws)
    }
}
