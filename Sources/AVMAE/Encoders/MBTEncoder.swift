/// Finetuned MBT encoder (scenic/projects/av_mae/mbt.py Encoder, google-research/scenic@4a38d475; spec Part B §5.4).
/// Layer l < fusion_layer: each modality runs its own block. Layer l >= fusion_layer: the bottleneck z is appended
/// after each modality's tokens, each modality runs its block on [x_m ; z], and the new z is the mean of the
/// updated copies. One shared `encoder_norm` at the end, applied per token, bottleneck dropped.
struct MBTEncoder: Encoder {
    let towers: [Modality: [EncoderBlock]]
    let bottleneck: Matrix?  // (n, D); nil for one-modality models, which never fuse
    let fusionLayer: Int
    let norm: LayerNorm

    init(_ w: WeightScope, config: ModelConfig) throws {
        let t = w.scope("Transformer")
        var towers = [Modality: [EncoderBlock]]()
        if config.modalities.count == 2 {
            towers[.video] = try loadBlocks(t, count: config.numLayers, config: config)
            towers[.audio] = try loadBlocks(t, count: config.numLayers, suffix: "_spec", config: config)
        } else {
            towers[config.modalities[0]] = try loadBlocks(t, count: config.numLayers, config: config)
        }
        self.towers = towers
        let n = config.bottlenecks, d = config.hiddenSize, fuses = config.modalities.count == 2
        // Single-modality checkpoints still carry the bottleneck parameter, unused (spec Part B §5.4): read it
        // anyway so its shape is checked and the loader does not refuse it as unknown.
        let z = fuses || w.store.has(w.path("bottleneck")) ? try w("bottleneck", shape: [1, n, d], as: n, d).matrix : nil
        bottleneck = fuses ? z : nil
        fusionLayer = fuses ? config.fusionLayer : config.numLayers
        norm = try LayerNorm(t.scope("encoder_norm"), dim: d)
    }

    var extraTokens: Int { bottleneck?.rows ?? 0 }

    func callAsFunction(_ tokens: [Modality: TokenBatch], _ ws: Workspace) -> [Modality: TokenBatch] {
        var x = tokens
        let order = Modality.allCases.filter { x[$0] != nil }
        let layers = towers[order[0]]!.count
        for l in 0..<min(fusionLayer, layers) {
            for m in order { towers[m]![l](x[m]!, ws) }
        }
        if let bottleneck, fusionLayer < layers {
            x = fuse(x, order: order, from: fusionLayer, bottleneck: bottleneck, ws)
        }
        for m in order { norm(x[m]!.all.readOnly, into: x[m]!.all) }
        return x
    }

    /// Layers fusion_layer..<L with bottleneck tokens; returns the modality tokens at their plain stride.
    /// Our decision for a one-modality request on an audio+video model (spec Part A.3): the same loop with one
    /// modality, so the new z is that modality's updated copy.
    private func fuse(_ x: [Modality: TokenBatch], order: [Modality], from first: Int, bottleneck: Matrix,
                      _ ws: Workspace) -> [Modality: TokenBatch] {
        let anyTokens = x[order[0]]!, batch = anyTokens.batch, dim = anyTokens.dim, n = bottleneck.rows
        var fused = [Modality: TokenBatch]()
        for m in order {
            restride(x[m]!.buffer, batch: batch, dim: dim, from: x[m]!.tokens, to: x[m]!.tokens + n)
            fused[m] = TokenBatch(x[m]!.buffer, batch: batch, tokens: x[m]!.tokens + n, dim: dim)
        }
        let z = ws.bottleneck.matrix(batch * n, dim)       // (batch * n, D)
        let sum = ws.bottleneckSum.matrix(batch * n, dim)  // (batch * n, D)
        for b in 0..<batch { z.rows(b * n, n).copy(from: bottleneck) }
        for l in first..<towers[order[0]]!.count {
            for m in order {
                let seq = fused[m]!, own = x[m]!.tokens
                for b in 0..<batch { seq.item(b).rows(own, n).copy(from: z.rows(b * n, n).readOnly) }
                towers[m]![l](seq, ws)
                for b in 0..<batch {
                    let updated = seq.item(b).rows(own, n).readOnly
                    if m == order[0] { sum.rows(b * n, n).copy(from: updated) } else { addInPlace(sum.rows(b * n, n), updated) }
                }
            }
            z.copy(from: sum.readOnly)
            z.scale(by: 1 / Float(order.count))
        }
        for m in order {
            restride(x[m]!.buffer, batch: batch, dim: dim, from: x[m]!.tokens + n, to: x[m]!.tokens)
        }
        return x
    }
}
