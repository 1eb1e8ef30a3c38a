/// MultiHeadDotProductAttention_0: full bidirectional self-attention, q scaled by 1/sqrt(Dh) (spec Part B §5.2).
/// Port of flax.linen.MultiHeadDotProductAttention as used by scenic/projects/mbt/model.py EncoderBlock
/// (google-research/scenic@4a38d475).
struct Attention {
    let query: Linear   // kernel (D, H*Dh)
    let key: Linear
    let value: Linear
    let out: Linear     // kernel (H*Dh, D)
    let heads: Int
    let headDim: Int

    init(_ w: WeightScope, dim: Int, heads: Int) throws {
        let headDim = dim / heads
        query = try Linear(w.scope("query"), kernelShape: [dim, heads, headDim], biasShape: [heads, headDim])
        key = try Linear(w.scope("key"), kernelShape: [dim, heads, headDim], biasShape: [heads, headDim])
        value = try Linear(w.scope("value"), kernelShape: [dim, heads, headDim], biasShape: [heads, headDim])
        out = try Linear(w.scope("out"), kernelShape: [heads, headDim, dim], biasShape: [dim])
        self.heads = heads
        self.headDim = headDim
    }

    /// residual += Attention(h); h is the LayerNorm_0 output, both (batch * tokens, D).
    func callAsFunction(_ h: Matrix, batch: Int, tokens: Int, residual: MutableMatrix, _ ws: Workspace) {
        let rows = batch * tokens, dim = heads * headDim
        let q = ws.query.matrix(rows, dim), k = ws.key.matrix(rows, dim), v = ws.value.matrix(rows, dim)
        query(h, into: q)
        key(h, into: k)
        value(h, into: v)
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
        out.accumulate(context.readOnly, into: residual)
    }
}
