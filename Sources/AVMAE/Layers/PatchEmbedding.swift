/// The audio tokenizer: nn.Conv(D, kernel 16x16, stride 16, VALID) on the [time, mel] spectrogram, as one gemm
/// over im2col patches, then the sinusoidal table (spec Part B §3.1, §4;
/// scenic/projects/av_mae/model_utils.py embed_2d_patch, google-research/scenic@4a38d475).
/// Tokens are time-major (t * melPatches + f); frames past the last whole patch are dropped, as VALID does.
struct AudioPatchEmbedding {
    static let p = PatchGeometry.audioPatch
    let projection: Linear  // kernel (16*16*1, D): patch vector ordered (time i, mel j)

    init(_ w: WeightScope, dim: Int) throws {
        // In-channels 3 (an inflated-spectrogram checkpoint) would need the kernel summed over channels; the
        // released AV-MAE configs all use 1 (inflate_spectrograms=False), so refuse anything else by shape.
        projection = try Linear(w.fullPrecision, kernelShape: [Self.p, Self.p, 1, dim], biasShape: [dim])
    }

    /// spectrogram: (batch * frames, mel) -> tokens (batch, (frames/16) * (mel/16), D)
    func callAsFunction(_ spectrogram: Matrix, batch: Int, frames: Int, into out: TokenBatch, _ ws: Workspace) {
        let p = Self.p, timePatches = frames / p, melPatches = spectrogram.cols / p
        precondition(out.tokens == timePatches * melPatches && out.batch == batch)
        let patches = ws.patches.matrix(batch * out.tokens, p * p)  // (batch * tokens, 256)
        for b in 0..<batch {
            for t in 0..<timePatches {
                for f in 0..<melPatches {
                    let dst = patches.row((b * timePatches + t) * melPatches + f).baseAddress!
                    for i in 0..<p {
                        let src = spectrogram.row(b * frames + t * p + i).baseAddress! + f * p
                        (dst + i * p).update(from: src, count: p)
                    }
                }
            }
        }
        projection(patches.readOnly, into: out.all, ws)
        addPositions(out, ws)
    }
}

/// The video tokenizer: nn.Conv(D, kernel (2,16,16), stride (2,16,16), VALID) on [T, 224, 224, 3] frames,
/// kernel axes (t, h, w, rgb, D) (spec Part B §3.2; scenic/projects/mbt/model.py embed_3d_patch).
/// Tokens are t * 196 + h * 14 + w.
struct VideoTubeletEmbedding {
    static let (pt, ps, size) = (PatchGeometry.tubeletFrames, PatchGeometry.videoPatch, PatchGeometry.imageSize)
    let projection: Linear  // kernel (2*16*16*3, D): patch vector ordered (dt, dh, dw, c)

    init(_ w: WeightScope, dim: Int) throws {
        projection = try Linear(w.fullPrecision, kernelShape: [Self.pt, Self.ps, Self.ps, 3, dim], biasShape: [dim])
    }

    /// frames: (batch, T, 224, 224, 3) -> tokens (batch, (T/2) * 196, D)
    func callAsFunction(_ frames: Frames, batch: Int, into out: TokenBatch, _ ws: Workspace) {
        switch frames {
        case .floats(let tensor):
            tensor.data.withUnsafeBufferPointer { values in
                embed(values, batch: batch, into: out, ws) { dst, src, n in dst.update(from: src, count: n) }
            }
        case .bytes(_, let bytes):
            bytes.withUnsafeBufferPointer { values in
                embed(values, batch: batch, into: out, ws) { dst, src, n in
                    for i in 0..<n { dst[i] = Float(src[i]) / 255 * 2 - 1 }
                }
            }
        }
    }

    /// im2col over either element type; `copy` moves (and for bytes, converts) one patch row.
    private func embed<Value>(_ frames: UnsafeBufferPointer<Value>, batch: Int, into out: TokenBatch, _ ws: Workspace,
                              copy: (UnsafeMutablePointer<Float>, UnsafePointer<Value>, Int) -> Void) {
        let (pt, ps, size) = (Self.pt, Self.ps, Self.size)
        let grid = size / ps, rowValues = ps * 3, frameValues = size * size * 3
        let t = frames.count / max(batch * frameValues, 1)
        precondition(frames.count == batch * t * frameValues && out.tokens == (t / pt) * grid * grid)
        let patches = ws.patches.matrix(batch * out.tokens, pt * ps * ps * 3)  // (batch * tokens, 1536)
        let base = frames.baseAddress!
        for b in 0..<batch {
            for tt in 0..<(t / pt) {
                for h in 0..<grid {
                    for w in 0..<grid {
                        let dst = patches.row(((b * (t / pt) + tt) * grid + h) * grid + w).baseAddress!
                        for dt in 0..<pt {
                            let frame = base + (b * t + tt * pt + dt) * frameValues
                            for dh in 0..<ps {
                                copy(dst + (dt * ps + dh) * rowValues, frame + ((h * ps + dh) * size + w * ps) * 3, rowValues)
                            }
                        }
                    }
                }
            }
        }
        projection(patches.readOnly, into: out.all, ws)
        addPositions(out, ws)
    }
}

/// Adds the per-modality 1-D sinusoidal table to every batch item (no CLS, no modality embedding).
private func addPositions(_ tokens: TokenBatch, _ ws: Workspace) {
    let table = ws.positionTable(count: tokens.tokens, dim: tokens.dim)
    table.withUnsafeBufferPointer { t in
        let pe = Matrix(base: t.baseAddress!, rows: tokens.tokens, cols: tokens.dim, ld: tokens.dim)
        for b in 0..<tokens.batch { addInPlace(tokens.item(b), pe) }
    }
}
