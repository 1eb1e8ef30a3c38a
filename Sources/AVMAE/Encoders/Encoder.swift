import Foundation

/// The part of the model between the tokenizers and the outputs: takes each modality's embedded tokens and
/// returns each modality's final (normalised) tokens, in place in the same buffers.
protocol Encoder {
    func callAsFunction(_ tokens: [Modality: TokenBatch], _ ws: Workspace) -> [Modality: TokenBatch]
    /// Extra tokens per item the encoder appends inside the token buffers (MBT bottlenecks).
    var extraTokens: Int { get }
}

/// A stack of blocks named `<prefix>/encoderblock_<l><suffix>`.
func loadBlocks(_ w: WeightScope, count: Int, suffix: String = "", config: ModelConfig) throws -> [EncoderBlock] {
    try (0..<count).map { try EncoderBlock(w.scope("encoderblock_\($0)\(suffix)"), config: config) }
}

/// Moves each item's `from` tokens to a stride of `to` tokens per item, in place (memmove handles overlap;
/// growing walks items backwards, shrinking forwards, so no item overwrites one not yet moved).
func restride(_ buffer: Buffer, batch: Int, dim: Int, from: Int, to: Int) {
    guard from != to else { return }
    let keep = min(from, to) * dim * MemoryLayout<Float>.stride
    let order = to > from ? Array((0..<batch).reversed()) : Array(0..<batch)
    for b in order {
        memmove(buffer.pointer + b * to * dim, buffer.pointer + b * from * dim, keep)
    }
}
