import XCTest
import Media

final class AudioDecodingTests: XCTestCase {
    let audioOnly = ClipPolicy(wantVideo: false)

    /// Every audio container and rate: 16 kHz mono out, one second long, still a 1 kHz sine at amplitude 0.5.
    func testEveryFormatBecomesA16kHzSine() throws {
        let cases: [(String, rate: Int, channels: Int)] = [
            ("sine_8k_mono_1s.wav", 8000, 1), ("sine_16k_mono_1s.wav", 16000, 1), ("sine_22k_stereo_1s.wav", 22050, 2),
            ("sine_44k_stereo_1s.wav", 44100, 2), ("sine_48k_stereo_1s_f32.wav", 48000, 2), ("sine_44k_stereo_1s.flac", 44100, 2),
            ("sine_22k_mono_1s.mp3", 22050, 1), ("sine_48k_stereo_1s.ogg", 48000, 2), ("sine_48k_mono_1s.opus", 48000, 1),
            ("sine_44k_stereo_1s.m4a", 44100, 2), ("audio_only_48k_mono_1s.mp4", 48000, 1),
        ]
        for (name, rate, channels) in cases {
            let clip = try MediaDecoder().decode(fixture(name), policy: audioOnly)
            let audio = try XCTUnwrap(clip.info.audio, name)
            XCTAssertEqual(audio.sampleRate, rate, name)
            XCTAssertEqual(audio.channels, channels, name)
            // Lossy codecs add encoder delay and padding (up to ~50 ms for MP3 and AAC).
            XCTAssertEqual(clip.info.durationSeconds, 1, accuracy: 0.06, name)
            XCTAssertEqual(clip.windows.count, 1, name)
            let waveform = try XCTUnwrap(clip.windows[0].waveform, name)
            XCTAssertEqual(waveform.count, 160_000, name)
            // Away from the clip's edges, where codec priming and the loop seam sit.
            let second = Array(waveform[3000..<13000])
            XCTAssertEqual(peakFrequency(second, sampleRate: 16000), 1000, name)
            let peak = second.map { abs($0) }.max() ?? 0
            // FFmpeg's AAC encoder itself overshoots to 0.59 at 64 kb/s (checked with the ffmpeg CLI).
            XCTAssertEqual(peak, 0.5, accuracy: 0.1, "\(name): a channel mean keeps a 0.5 sine at 0.5")
        }
    }

    func testPcmSampleCountsAreExact() throws {
        for name in ["sine_8k_mono_1s.wav", "sine_16k_mono_1s.wav", "sine_22k_stereo_1s.wav", "sine_44k_stereo_1s.wav", "sine_44k_stereo_1s.flac"] {
            for preferSndfile in [true, false] {
                let clip = try MediaDecoder(preferSndfile: preferSndfile).decode(fixture(name), policy: audioOnly)
                XCTAssertEqual(clip.info.durationSeconds * 16000, 16000, accuracy: 1, "\(name) sndfile=\(preferSndfile)")
            }
        }
    }

    /// libsndfile and FFmpeg decode the same PCM, and both go through the same resampler.
    func testSndfileAndFFmpegAgree() throws {
        for name in ["sine_44k_stereo_1s.wav", "sine_44k_stereo_1s.flac", "sine_48k_stereo_1s_f32.wav"] {
            let a = try XCTUnwrap(MediaDecoder(preferSndfile: true).decode(fixture(name), policy: audioOnly).windows[0].waveform)
            let b = try XCTUnwrap(MediaDecoder(preferSndfile: false).decode(fixture(name), policy: audioOnly).windows[0].waveform)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 1
            XCTAssertLessThan(worst, 1e-4, name)
        }
    }

    /// A clip shorter than the window is looped: the waveform repeats with the clip's period.
    func testShortClipIsLooped() throws {
        let clip = try MediaDecoder().decode(fixture("sine_16k_mono_1s.wav"), policy: audioOnly)
        let waveform = try XCTUnwrap(clip.windows[0].waveform)
        XCTAssertEqual(Array(waveform[16000..<17000]), Array(waveform[0..<1000]))
        XCTAssertEqual(Array(waveform[150_000..<151_000]), Array(waveform[6000..<7000]))
    }

    /// 25 s with 10 s windows: starts at 0, 10 and 15 (the last window ends at the clip's end).
    func testLongClipsAreWindowed() throws {
        for name in ["sine_8k_mono_25s.wav", "sine_16k_mono_25s.flac", "sine_44k_stereo_25s.mp3"] {
            let clip = try MediaDecoder().decode(fixture(name), policy: audioOnly)
            XCTAssertEqual(clip.windows.count, 3, name)
            for (window, start) in zip(clip.windows, [0.0, 10, 15]) {
                XCTAssertEqual(window.startSeconds, start, accuracy: 0.06, name)
            }
            XCTAssertTrue(clip.windows.allSatisfy { $0.waveform?.count == 160_000 }, name)
        }
        let hop = try MediaDecoder().decode(fixture("sine_8k_mono_25s.wav"), policy: ClipPolicy(windowSeconds: 8, hopSeconds: 4, wantVideo: false))
        XCTAssertEqual(hop.windows.map(\.startSeconds), [0, 4, 8, 12, 16, 17])
        XCTAssertTrue(hop.windows.allSatisfy { $0.waveform?.count == 128_000 })
    }
}
