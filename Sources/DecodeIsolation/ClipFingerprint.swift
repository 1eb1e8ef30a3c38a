import Checksum

/// What the log says about a clip a worker failed on: enough to find it again and to tell repeats apart, never
/// its bytes.
struct ClipFingerprint: CustomStringConvertible {
    var bytes: Int
    /// A guess from the first bytes, the way `file` would; the decoder never got far enough to say.
    var format: String
    /// Hex SHA-256 of the whole clip.
    var sha256: String

    init(_ clip: [UInt8]) {
        bytes = clip.count
        format = Self.guess(clip)
        sha256 = SHA256.hex(of: clip)
    }

    var description: String { "\(bytes) bytes, \(format), sha256 \(sha256)" }

    private static func guess(_ clip: [UInt8]) -> String {
        func at(_ offset: Int, _ text: String) -> Bool {
            let magic = Array(text.utf8)
            return clip.count >= offset + magic.count && Array(clip[offset..<offset + magic.count]) == magic
        }
        if at(0, "RIFF") && at(8, "WAVE") { return "wav" }
        if at(0, "RIFF") && at(8, "AVI ") { return "avi" }
        if at(0, "fLaC") { return "flac" }
        if at(0, "OggS") { return "ogg" }
        if at(0, "ID3") || (clip.count >= 2 && clip[0] == 0xFF && clip[1] & 0xE0 == 0xE0) { return "mp3" }
        if at(4, "ftyp") { return "mp4/mov" }
        if clip.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return "matroska/webm" }
        if clip.first == 0x47 { return "mpeg-ts?" }
        return "unknown"
    }
}
