/// Token counts of the two tokenizers (spec Part B §3).
public enum PatchGeometry {
    /// Audio patches are 16 (time) x 16 (mel) with stride 16, VALID padding.
    public static let audioPatch = 16
    /// Video tubelets are 2 (time) x 16 x 16 over 224x224 frames.
    public static let tubeletFrames = 2
    public static let videoPatch = 16
    public static let imageSize = 224

    public static func audioTokens(frames: Int, melBins: Int) -> Int {
        (frames / audioPatch) * (melBins / audioPatch)
    }

    public static func videoTokens(frames: Int) -> Int {
        (frames / tubeletFrames) * (imageSize / videoPatch) * (imageSize / videoPatch)
    }
}
