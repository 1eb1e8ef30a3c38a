import Media
import XCTest

final class ClipWindowStreamTests: XCTestCase {
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
                    let stream = try ClipWindowStream(source: .bytes(fixture(name)), policy: policy, limits: MediaLimits(),
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

    /// Pictures stream too: every window's sound, crops (byte for byte) and frame times are the whole-clip
    /// decoder's, for sound and pictures together (including sound that starts late, moved onto the pictures'
    /// timeline), pictures alone, one crop or four, with and without overlapping windows.
    func testVideoWindowsMatchTheWholeClipDecoder() throws {
        let cases: [(file: String, wantAudio: Bool)] = [
            ("long_25s.mp4", true), ("long_25s.mp4", false), ("late_audio.mp4", true), ("bars_vp9_opus.webm", true),
            ("regress_h264_360x640_rotated_audio.mp4", true), ("faststart_no_audio_5s.mp4", true),
        ]
        for (name, wantAudio) in cases {
            for (hop, crops) in [(nil, 1), (name == "long_25s.mp4" ? 3.0 : 0.3, 4)] as [(Double?, Int)] {
                let policy = ClipPolicy(windowSeconds: name == "long_25s.mp4" ? 10 : 0.4, hopSeconds: hop, frames: 4,
                                        stride: 2, wantAudio: wantAudio, crops: crops)
                let label = "\(name) audio=\(wantAudio) hop=\(hop.map { "\($0)" } ?? "none") crops=\(crops)"
                let bytes = try fixture(name)
                let whole = try MediaDecoder().decode(bytes, policy: policy)
                let stream = try ClipWindowStream(source: .bytes(bytes), policy: policy, limits: MediaLimits())
                XCTAssertEqual(stream.hasAudio, whole.hasAudio, label)
                XCTAssertTrue(stream.hasVideo, label)
                var streamed: [ClipWindow] = []
                while let window = try stream.next() { streamed.append(window) }
                XCTAssertGreaterThan(streamed.count, 1, "\(label): a test of several windows")
                XCTAssertEqual(streamed.map(\.startSeconds), whole.windows.map(\.startSeconds), label)
                for (a, b) in zip(streamed, whole.windows) {
                    XCTAssertEqual(a.waveform, b.waveform, "\(label) window \(a.index)")
                    XCTAssertEqual(a.frameTimes, b.frameTimes, "\(label) window \(a.index)")
                    XCTAssertEqual(a.videoCrops.count, crops, "\(label) window \(a.index)")
                    XCTAssertTrue(a.videoCrops == b.videoCrops, "\(label) window \(a.index): the crops differ")
                }
                XCTAssertEqual(stream.info.durationSeconds, whole.info.durationSeconds, accuracy: 1e-9, label)
                XCTAssertEqual(stream.decodedSeconds, whole.info.durationSeconds, accuracy: 1e-9, label)
            }
        }
    }

    /// Pictures that stop well short of what the header declares fail the window that reaches past them, as the
    /// whole-clip decoder fails the clip; the windows before it still come out.
    func testPicturesCutShortFailTheirWindow() throws {
        let bytes = try fixture("faststart_no_audio_5s.mp4")
        let cut = Array(bytes.prefix(bytes.count / 2))
        let policy = ClipPolicy(windowSeconds: 1, frames: 4, stride: 2)
        XCTAssertThrowsError(try MediaDecoder().decode(cut, policy: policy))
        let stream = try ClipWindowStream(source: .bytes(cut), policy: policy, limits: MediaLimits())
        var windows = 0
        do {
            while try stream.next() != nil { windows += 1 }
            XCTFail("a cut-short video streamed \(windows) windows to its end")
        } catch {
            guard case .truncated = error else { return XCTFail("expected truncated, got \(error)") }
        }
        XCTAssertGreaterThan(windows, 0, "the windows before the cut should stream")
    }

    /// A recording whose header declares more than the limit is refused before any window, so a streamed request
    /// gets an ordinary error status for it.
    func testDeclaredLengthOverTheLimitIsRefusedAtOnce() throws {
        XCTAssertThrowsError(try ClipWindowStream(source: .bytes(fixture("sine_16k_mono_25s.flac")),
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
        let fromFile = try ClipWindowStream(source: .file(MediaFile(adopting: descriptor, size: bytes.count)), policy: policy,
                                             limits: MediaLimits())
        let fromBytes = try ClipWindowStream(source: .bytes(bytes), policy: policy, limits: MediaLimits())
        while let a = try fromBytes.next() {
            let b = try XCTUnwrap(try fromFile.next())
            XCTAssertEqual(a.waveform, b.waveform, "window \(a.index)")
        }
        XCTAssertNil(try fromFile.next())
    }
}
