import Media
import XCTest

final class AudioWindowStreamTests: XCTestCase {
    /// A streamed recording is cut exactly as a whole one: the same windows (count, starts, the pulled-back last
    /// one, a short clip looped) with the same samples, through FFmpeg and libsndfile, with and without overlap.
    func testWindowsMatchTheWholeClipDecoder() throws {
        let files = ["sine_44k_stereo_25s.mp3", "sine_16k_mono_25s.flac", "sine_8k_mono_25s.wav", "sine_44k_stereo_1s.wav",
                     "sine_48k_stereo_1s.ogg"]
        for name in files {
            for hop in [nil, 3.0] {
                for preferSndfile in [true, false] {
                    let policy = ClipPolicy(hopSeconds: hop, wantVideo: false)
                    let label = "\(name) hop=\(hop.map { "\($0)" } ?? "none") sndfile=\(preferSndfile)"
                    let whole = try MediaDecoder(preferSndfile: preferSndfile).decode(fixture(name), policy: policy)
                    let stream = try AudioWindowStream(source: .bytes(fixture(name)), policy: policy, limits: MediaLimits(),
                                                       preferSndfile: preferSndfile)
                    var streamed: [ClipWindow] = []
                    while let window = try stream.next() { streamed.append(window) }
                    XCTAssertEqual(streamed.map(\.index), whole.windows.map(\.index), label)
                    XCTAssertEqual(streamed.map(\.startSeconds), whole.windows.map(\.startSeconds), label)
                    for (a, b) in zip(streamed, whole.windows) {
                        XCTAssertEqual(a.waveform, b.waveform, "\(label) window \(a.index)")
                    }
                    XCTAssertEqual(stream.info.durationSeconds, whole.info.durationSeconds, accuracy: 1e-9, label)
                    XCTAssertNil(try stream.next(), "\(label): nothing after the end")
                }
            }
        }
    }

    /// A recording whose header declares more than the limit is refused before any window, so a streamed request
    /// gets an ordinary error status for it.
    func testDeclaredLengthOverTheLimitIsRefusedAtOnce() throws {
        XCTAssertThrowsError(try AudioWindowStream(source: .bytes(fixture("sine_16k_mono_25s.flac")),
                                                   policy: ClipPolicy(wantVideo: false),
                                                   limits: MediaLimits(maxDurationSeconds: 12))) { error in
            guard case MediaError.tooLong(let seconds, let limit) = error else { return XCTFail("expected tooLong, got \(error)") }
            XCTAssertEqual(seconds, 25, accuracy: 0.1)
            XCTAssertEqual(limit, 12)
        }
    }

    /// A spooled upload is read from its file, not from memory, and decodes the same.
    func testFileSourceDecodesLikeBytes() throws {
        let bytes = try fixture("sine_44k_stereo_25s.mp3")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString).mp3")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let descriptor = open(url.path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        let policy = ClipPolicy(wantVideo: false)
        let fromFile = try AudioWindowStream(source: .file(MediaFile(adopting: descriptor, size: bytes.count)), policy: policy,
                                             limits: MediaLimits())
        let fromBytes = try AudioWindowStream(source: .bytes(bytes), policy: policy, limits: MediaLimits())
        while let a = try fromBytes.next() {
            let b = try XCTUnwrap(try fromFile.next())
            XCTAssertEqual(a.waveform, b.waveform, "window \(a.index)")
        }
        XCTAssertNil(try fromFile.next())
    }
}
