import XCTest
import Media

/// Deterministic bytes for "random" uploads (SplitMix64), so a failure reproduces.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

final class BadInputTests: XCTestCase {
    func testEmptyBody() {
        XCTAssertEqual(decodeError([]), .empty)
    }

    func testRandomBytesAreAnUnknownFormat() {
        var random = SplitMix64(state: 1)
        for size in [1, 16, 1000, 100_000] {
            XCTAssertEqual(decodeError(random.bytes(size)), .unsupportedFormat("not a recognised audio or video file"), "\(size) bytes")
        }
    }

    /// Containers that state their length or index (MP4's moov, FLAC's sample count, Matroska's duration) are
    /// caught as truncated; where only the decoder notices, the cut shows as corrupt data.
    func testTruncatedFiles() throws {
        for name in ["bars_h264_aac.mp4", "sine_44k_stereo_1s.flac", "sine_16k_mono_25s.flac", "sine_44k_stereo_1s.m4a",
                     "bars_h264_vorbis.mkv", "bars_vp9_opus.webm", "long_25s.mp4", "sine_44k_stereo_25s.mp3"] {
            let bytes = try fixture(name)
            for keep in [bytes.count / 2, bytes.count / 10, 40] {
                for preferSndfile in [true, false] {
                    let error = decodeError(Array(bytes.prefix(keep)), decoder: MediaDecoder(preferSndfile: preferSndfile))
                    switch error {
                    case .truncated?, .corrupt?: break
                    default: XCTFail("\(name) cut to \(keep) bytes gave \(String(describing: error))")
                    }
                }
            }
        }
    }

    /// With the index first, a cut MP4 still opens; its pictures stop at 2.5 s of the 5 s promised.
    func testTruncatedFaststartVideo() throws {
        let bytes = try fixture("faststart_no_audio_5s.mp4")
        let error = decodeError(Array(bytes.prefix(bytes.count / 2)), policy: ClipPolicy(windowSeconds: 5, wantAudio: false))
        guard case .truncated? = error else { return XCTFail("gave \(String(describing: error))") }
    }

    /// PCM WAV cut inside its data is still valid sound: FFmpeg and libsndfile both trim the data chunk to the
    /// bytes present, so it decodes as the shorter clip it is. Cut inside the header, it is an error.
    func testTruncatedWav() throws {
        let bytes = try fixture("sine_44k_stereo_1s.wav")
        for preferSndfile in [true, false] {
            let clip = try MediaDecoder(preferSndfile: preferSndfile).decode(Array(bytes.prefix(bytes.count / 2)), policy: ClipPolicy(wantVideo: false))
            XCTAssertEqual(clip.info.durationSeconds, 0.5, accuracy: 0.01)
            XCTAssertNotNil(decodeError(Array(bytes.prefix(30)), decoder: MediaDecoder(preferSndfile: preferSndfile)))
        }
    }

    /// A real header followed by noise: the demuxer accepts it, the decoder finds nothing it can use.
    func testValidHeaderWithGarbageAfterIt() throws {
        var random = SplitMix64(state: 7)
        for (name, headerBytes) in [("bars_h264_aac.mp4", 48), ("sine_44k_stereo_1s.flac", 42), ("sine_48k_stereo_1s.ogg", 200), ("bars_h264_vorbis.mkv", 300)] {
            let bytes = try Array(fixture(name).prefix(headerBytes)) + random.bytes(50_000)
            let error = decodeError(bytes)
            switch error {
            case .corrupt?, .truncated?, .unsupportedFormat?, .noUsableStream?: break
            default: XCTFail("\(name) header + garbage gave \(String(describing: error))")
            }
        }
    }

    func testOneByOneVideo() throws {
        XCTAssertEqual(decodeError(try fixture("tiny_1x1.mkv"), policy: ClipPolicy(wantAudio: false)),
                       .noUsableStream("the video is 1x1, smaller than 16 px on a side"))
    }

    func testDeclaredHugeFrame() throws {
        XCTAssertEqual(decodeError(try fixture("declared_16000x16000.mov")),
                       .frameTooLarge(width: 16000, height: 16000, limitPixels: 4096 * 4096))
    }

    /// Headers patched to claim 10 hours. An MP4 movie header of 36000 s is refused before decoding. A WAV data
    /// chunk of 576 MB is trimmed to the 16 KB present by both FFmpeg and libsndfile: it is the 1 s clip it holds.
    func testFileClaimingTenHours() throws {
        var wav = try fixture("sine_8k_mono_1s.wav")
        let data = try XCTUnwrap(find(Array("data".utf8), in: wav))
        put(UInt32(8000 * 2 * 36000), littleEndian: true, at: data + 4, in: &wav)
        for preferSndfile in [true, false] {
            let clip = try MediaDecoder(preferSndfile: preferSndfile).decode(wav, policy: ClipPolicy(wantVideo: false))
            XCTAssertEqual(clip.info.durationSeconds, 1, accuracy: 0.001)
        }

        var mp4 = try fixture("bars_h264_aac.mp4")
        let mvhd = try XCTUnwrap(find(Array("mvhd".utf8), in: mp4))
        put(UInt32(1000 * 36000), littleEndian: false, at: mvhd + 20, in: &mp4)
        XCTAssertEqual(decodeError(mp4), .tooLong(seconds: 36000, limit: 600))
    }

    /// Found by the fuzzer: a WAV header claiming 2,016,362,112 Hz made swresample allocate a 2 GB filter bank.
    func testAbsurdSampleRate() throws {
        for preferSndfile in [true, false] {
            XCTAssertEqual(decodeError(try fixture("fuzz_wav_2ghz_rate.wav"), decoder: MediaDecoder(preferSndfile: preferSndfile)),
                           .unsupportedFormat("audio at 2016362112 Hz with 1 channels"))
        }
    }

    func testLimits() throws {
        let bytes = try fixture("bars_h264_aac.mp4")
        XCTAssertEqual(decodeError(bytes, decoder: MediaDecoder(limits: MediaLimits(maxBytes: 1000))), .tooLarge(bytes: bytes.count, limit: 1000))
        XCTAssertEqual(decodeError(bytes, decoder: MediaDecoder(limits: MediaLimits(maxStreams: 1))), .tooManyStreams(2, limit: 1))
        XCTAssertEqual(decodeError(bytes, decoder: MediaDecoder(limits: MediaLimits(maxPixels: 100 * 100))),
                       .frameTooLarge(width: 320, height: 240, limitPixels: 10_000))
        let long = try fixture("sine_8k_mono_25s.wav")
        XCTAssertEqual(decodeError(long, decoder: MediaDecoder(limits: MediaLimits(maxDurationSeconds: 20))), .tooLong(seconds: 25, limit: 20))
    }

    func testMissingModality() throws {
        XCTAssertEqual(decodeError(try fixture("bars_no_audio.mp4"), policy: ClipPolicy(wantVideo: false)),
                       .noUsableStream("the file has no audio track, and this model only listens"))
        XCTAssertEqual(decodeError(try fixture("sine_16k_mono_1s.wav"), policy: ClipPolicy(wantAudio: false)),
                       .noUsableStream("the file has no video track, and this model only watches"))
    }

    func testErrorsReadAsSentences() {
        XCTAssertEqual(MediaError.tooLong(seconds: 36000, limit: 600).description,
                       "the clip lasts 36000.0 s, longer than the 600.0 s limit; trim it")
    }

    private func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        (0...(bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) }
    }

    private func put(_ value: UInt32, littleEndian: Bool, at offset: Int, in bytes: inout [UInt8]) {
        for i in 0..<4 {
            let shift = littleEndian ? 8 * i : 8 * (3 - i)
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(shift))
        }
    }
}
