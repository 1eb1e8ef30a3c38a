import Foundation

/// The clips in Fixtures/ (see Fixtures/README.md for how each was made).
enum Fixture {
    /// 10 s, 440 Hz sine, 16 kHz mono 16-bit WAV: exactly one model window.
    static let tone = url("tone", "wav")
    /// 25 s, 880 Hz sine, 16 kHz mono FLAC: several windows.
    static let long = url("long", "flac")
    /// 3 s, 160x120 testsrc H.264 + 330 Hz AAC, MP4: audio and video.
    static let clip = url("clip", "mp4")
    /// 1 s of 1x1 gray FFV1 video, no sound (copied from MediaTests/Fixtures): too small to be a video.
    static let tiny = url("tiny_1x1", "mkv")

    /// 25 s of 96x64 testsrc2 with a 16 kHz sine (copied from MediaTests/Fixtures): three windows of sound and
    /// pictures.
    static let longVideo = url("long_25s", "mp4")

    private static func url(_ name: String, _ ext: String) -> URL {
        Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures")!
    }

    /// A file of `count` bytes that is not media, for 413/422 tests.
    static func garbage(_ count: Int) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("garbage-\(UUID().uuidString).bin")
        try Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: url)
        return url
    }
}
