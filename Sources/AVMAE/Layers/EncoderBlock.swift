/// MlpBlock_0: Dense_0 (D -> mlp), GELU (tanh approximation), Dense_1 (mlp -> D).
struct MLP {
    let dense0: Linear
    let dense1: Linear

    init(_ w: WeightScope, dim: Int, hidden: Int, input: LayerNorm) throws {
        dense0 = try Linear(w.scope("Dense_0"), kernelShape: [dim, hidden], biasShape: [hidden], input: input)
        dense1 = try Linear(w.scope("Dense_1"), kernelShape: [hidden, dim], biasShape: [dim])
    }

    /// residual += MLP(h)
    func callAsFunction(_ h: Matrix, residual: MutableMatrix, _ ws: Workspace) {
        let hidden = ws.hidden.matrix(h.rows, dense0.kernel.cols)  // (rows, mlp)
        dense0(h, into: hidden, activation: .gelu, ws)
        dense1.accumulate(hidden.readOnly, into: residual, ws)
    }
}

/// Pre-LN transformer block (scenic/projects/vivit/model.py EncoderBlock and mbt/model.py EncoderBlock,
/// google-research/scenic@4a38d475, spec Part B §5.2):
///   x = x + Attention(LayerNorm_0(x));  x = x + MLP(LayerNorm_1(x))
struct EncoderBlock {
    let norm0: LayerNorm
    let attention: Attention
    let norm1: LayerNorm
    let mlp: MLP

    init(_ w: WeightScope, config: ModelConfig) throws {
        let d = config.hiddenSize
        norm0 = try LayerNorm(w.scope("LayerNorm_0"), dim: d, feedsProduct: true)
        attention = try Attention(w.scope("MultiHeadDotProductAttention_0"), dim: d, heads: config.numHeads, input: norm0)
        norm1 = try LayerNorm(w.scope("LayerNorm_1"), dim: d, feedsProduct: true)
        mlp = try MLP(w.scope("MlpBlock_0"), dim: d, hidden: config.mlpDim, input: norm1)
    }

    func callAsFunction(_ x: TokenBatch, _ ws: Workspace) {
        let all = x.all
        let h = ws.normed.matrix(all.rows, all.cols)  // (batch * tokens, D)
        norm0(all.readOnly, into: h)
        attention(h.readOnly, batch: x.batch, tokens: x.tokens, residual: all, ws)
        norm1(all.readOnly, into: h)
        mlp(h.readOnly, residual: all, ws)
    }
}
