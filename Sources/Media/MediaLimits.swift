/// What the decoder refuses before spending time or memory on an upload. Every limit is checked against what
/// the file declares first and against what decoding actually produces second, since headers can lie.
public struct MediaLimits: Sendable, Codable {
    /// Upload size, checked before anything is parsed.
    public var maxBytes: Int
    /// Clip length, checked against the declared duration and again while decoding.
    public var maxDurationSeconds: Double
    /// Pixels per video frame (width * height); the default admits DCI 4K (4096x2160) and 4096x4096 stills.
    public var maxPixels: Int
    /// A video whose short side is below this is refused: there is nothing for the model to see.
    public var minVideoSide: Int
    /// Streams in the container; real uploads have one or two, hundreds are a parser stress test.
    public var maxStreams: Int
    /// Model-ready frame sets (windows x crops) one upload may decode to. Each is frames x 224 x 224 x 3 bytes
    /// (4.8 MB at 32 frames), so the default holds at most ~620 MB; without a cap one 10-minute video with 4 crops
    /// would hold ~1.2 GB.
    public var maxVideoRows: Int

    public init(
        maxBytes: Int = 64 << 20,
        maxDurationSeconds: Double = 600,
        maxPixels: Int = 4096 * 4096,
        minVideoSide: Int = 16,
        maxStreams: Int = 16,
        maxVideoRows: Int = 128
    ) {
        self.maxBytes = maxBytes
        self.maxDurationSeconds = maxDurationSeconds
        self.maxPixels = maxPixels
        self.minVideoSide = minVideoSide
        self.maxStreams = maxStreams
        self.maxVideoRows = maxVideoRows
    }
}
