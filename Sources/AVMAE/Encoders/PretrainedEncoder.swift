/// Pretrained AV-MAE encoders at inference (no masking, no decoder; spec Part B §5.3, §6;
/// scenic/projects/av_mae/vivit_multimodal.py, google-research/scenic@4a38d475).
/// Each modality has its own tower `Transformer_<rgb|spectrogram>` ending in its own `encoder_norm`.
/// `mid_fusion` (separate_encoders_and_concat) then runs `Transformer_concat` on the concatenated tokens
/// (rgb first, as upstream's sorted dict order) and its `encoder_norm`, and splits the result back.
struct PretrainedEncoder: Encoder {
    let towers: [Modality: (blocks: [EncoderBlock], norm: LayerNorm)]
    let joint: (blocks: [EncoderBlock], norm: LayerNorm)?

    init(_ w: WeightScope, config: ModelConfig) throws {
        var towers = [Modality: (blocks: [EncoderBlock], norm: LayerNorm)]()
        for m in config.modalities {
            let t = w.scope(m == .audio ? "Transformer_spectrogram" : "Transformer_rgb")
            towers[m] = (try loadBlocks(t, count: config.numLayers, config: config),
                         try LayerNorm(t.scope("encoder_norm"), dim: config.hiddenSize))
        }
        self.towers = towers
        if config.encoder == .midFusion {
            let t = w.scope("Transformer_concat")
            joint = (try loadBlocks(t, count: config.jointLayers, config: config),
                     try LayerNorm(t.scope("encoder_norm"), dim: config.hiddenSize))
        } else {
            joint = nil
        }
    }

    var extraTokens: Int { 0 }

    func callAsFunction(_ tokens: [Modality: TokenBatch], _ ws: Workspace) -> [Modality: TokenBatch] {
        let order = [Modality.video, .audio].filter { tokens[$0] != nil }
        for m in order {
            let x = tokens[m]!
            for block in towers[m]!.blocks { block(x, ws) }
            towers[m]!.norm(x.all.readOnly, into: x.all)
        }
        guard let joint else { return tokens }
        let first = tokens[order[0]]!, batch = first.batch, dim = first.dim
        let total = order.reduce(0) { $0 + tokens[$1]!.tokens }
        let concat = TokenBatch(ws.jointTokens, batch: batch, tokens: total, dim: dim)  // (batch, Nv + Na, D)
        for b in 0..<batch {
            var at = 0
            for m in order {
                let x = tokens[m]!
                concat.item(b).rows(at, x.tokens).copy(from: x.item(b).readOnly)
                at += x.tokens
            }
        }
        for block in joint.blocks { block(concat, ws) }
        joint.norm(concat.all.readOnly, into: concat.all)
        for b in 0..<batch {
            var at = 0
            for m in order {
                let x = tokens[m]!
                x.item(b).copy(from: concat.item(b).rows(at, x.tokens).readOnly)
                at += x.tokens
            }
        }
        return tokens
    }
}
