/// ProjectionHeadAndClassifier_0 (scenic/projects/av_mae/mbt.py, google-research/scenic@4a38d475; spec Part B §7):
/// mean-pool each modality's normalised tokens separately, apply the one shared output_projection to each, and
/// average the per-modality logits.
struct ClassifierHead {
    let projection: Linear  // kernel (D, C)

    init(_ w: WeightScope, dim: Int, classes: Int) throws {
        projection = try Linear(w.scope("output_projection").fullPrecision, kernelShape: [dim, classes], biasShape: [classes])
    }

    /// -> logits (batch, C)
    func callAsFunction(_ tokens: [Modality: TokenBatch], _ ws: Workspace) -> Tensor {
        let modalities = Modality.allCases.filter { tokens[$0] != nil }
        let batch = tokens[modalities[0]]!.batch, dim = projection.kernel.rows, classes = projection.kernel.cols
        let pooled = ws.pooled.matrix(batch, dim)      // (batch, D)
        let logits = ws.logits.matrix(batch, classes)  // (batch, C), accumulates the per-modality mean
        let perModality = ws.hidden.matrix(batch, classes)
        for (i, m) in modalities.enumerated() {
            let x = tokens[m]!
            for b in 0..<batch { meanOfRows(x.item(b).readOnly, into: pooled.row(b)) }
            projection(pooled.readOnly, into: i == 0 ? logits : perModality, ws)
            if i > 0 { addInPlace(logits, perModality.readOnly) }
        }
        logits.scale(by: 1 / Float(modalities.count))
        return Tensor(shape: [batch, classes], data: logits.readOnly.toArray())
    }
}
