import XCTest
import Media

final class VideoDecodingTests: XCTestCase {
    let red: [Float] = [1, -1, -1], lime: [Float] = [-1, 1, -1], blue: [Float] = [-1, -1, 1], white: [Float] = [1, 1, 1]

    /// 320x240 bars, short side to 224 -> 298x224, crop x offset 37: red | lime | blue | white edges fall at
    /// crop columns 37.5, 112 and 186.5.
    func testColourBarsLandWhereExpectedInEveryContainer() throws {
        let cases: [(String, hasAudio: Bool, codec: String)] = [
            ("bars_h264_aac.mp4", true, "h264"), ("bars_h264_aac.mov", true, "h264"), ("bars_h264_vorbis.mkv", true, "h264"),
            ("bars_vp9_opus.webm", true, "vp9"), ("bars_no_audio.mp4", false, "h264"),
            ("bars_mpeg4_mp3.avi", true, "mpeg4"), ("bars_h264_aac.ts", true, "h264"),
        ]
        for (name, hasAudio, codec) in cases {
            let clip = try MediaDecoder().decode(fixture(name), policy: ClipPolicy())
            XCTAssertEqual(clip.hasAudio, hasAudio, name)
            XCTAssertTrue(clip.hasVideo, name)
            XCTAssertEqual(clip.info.video?.codec, codec, name)
            XCTAssertEqual(clip.info.video?.width, 320, name)
            XCTAssertEqual(clip.windows.count, 1, name)
            let crops = clip.windows[0].videoCrops
            XCTAssertEqual(crops.count, 1, name)
            XCTAssertEqual(crops[0].count, 16 * 224 * 224 * 3, name)
            for frame in [0, 15] {
                assertColour(pixel(crops[0], frame: frame, row: 112, column: 15), red, name)
                assertColour(pixel(crops[0], frame: frame, row: 112, column: 75), lime, name)
                assertColour(pixel(crops[0], frame: frame, row: 112, column: 150), blue, name)
                assertColour(pixel(crops[0], frame: frame, row: 112, column: 205), white, name)
            }
            // Saturated bars and white: the bytes span the whole range, as they will in [-1, 1].
            XCTAssertLessThan(crops[0].min() ?? 255, 20, name)
            XCTAssertGreaterThan(crops[0].max() ?? 0, 235, name)
        }
    }

    /// resize_short 256 (finetuned models): 341x256, crop x offset 58; edges at 32.6, 112, 197.4 in the crop.
    func testFinetunedResize() throws {
        let policy = ClipPolicy(frames: 32, stride: 2, resizeShort: 256)
        let crop = try XCTUnwrap(MediaDecoder().decode(fixture("bars_h264_aac.mp4"), policy: policy).windows[0].videoCrops.first)
        XCTAssertEqual(crop.count, 32 * 224 * 224 * 3)
        assertColour(pixel(crop, frame: 31, row: 5, column: 10), red)
        assertColour(pixel(crop, frame: 31, row: 5, column: 60), lime)
        assertColour(pixel(crop, frame: 31, row: 5, column: 160), blue)
        assertColour(pixel(crop, frame: 31, row: 5, column: 215), white)
    }

    /// Stored 320x240 with red on top, turned 90 degrees counter-clockwise by its display matrix: shown
    /// 240x320 with red on the left and blue on the right, as ffmpeg's autorotate shows it.
    func testPhoneRotationIsHonoured() throws {
        let clip = try MediaDecoder().decode(fixture("rotated_phone.mp4"), policy: ClipPolicy())
        XCTAssertEqual(clip.info.video?.rotation, 90)
        let crop = try XCTUnwrap(clip.windows[0].videoCrops.first)
        for row in [10, 112, 210] {
            assertColour(pixel(crop, frame: 3, row: row, column: 40), red, "row \(row)")
            assertColour(pixel(crop, frame: 3, row: row, column: 180), blue, "row \(row)")
        }
    }

    /// Frame n of the counter video has luma 16 + 2n; reads back which source frame a model frame shows.
    private func sourceFrame(_ crop: [UInt8], frame: Int) -> Int {
        let value = pixel(crop, frame: frame, row: 100, column: 100)[1]
        let byte = ((value + 1) / 2 * 255).rounded()
        return Int(((byte * 219 / 255) / 2).rounded())
    }

    /// 5 s at 25 fps, 4 s windows: starts 0 and 1 s; N = 100 frames per window, 8 frames at stride 4 from
    /// offset floor((100 - 32) / 2) = 34.
    func testFramesComeFromTheMiddleOfEachWindow() throws {
        let policy = ClipPolicy(windowSeconds: 4, frames: 8, stride: 4)
        let clip = try MediaDecoder().decode(fixture("counter_25fps_5s.mp4"), policy: policy)
        XCTAssertFalse(clip.hasAudio)
        XCTAssertEqual(clip.windows.map(\.startSeconds), [0, 1])
        for (window, base) in zip(clip.windows, [34, 59]) {
            let crop = window.videoCrops[0]
            XCTAssertEqual((0..<8).map { sourceFrame(crop, frame: $0) }, (0..<8).map { base + 4 * $0 })
        }
    }

    /// Four temporal crops start at linspace(0, 100 - 32, 4) floored: 0, 22, 45, 68.
    func testFourCropOffsets() throws {
        let policy = ClipPolicy(windowSeconds: 4, frames: 8, stride: 4, crops: 4)
        let window = try MediaDecoder().decode(fixture("counter_25fps_5s.mp4"), policy: policy).windows[0]
        XCTAssertEqual(window.videoCrops.count, 4)
        XCTAssertEqual(window.videoCrops.map { sourceFrame($0, frame: 0) }, [0, 22, 45, 68])
        XCTAssertEqual(window.videoCrops.map { sourceFrame($0, frame: 7) }, [28, 50, 73, 96])
    }

    /// A video shorter than the span wraps around: a 10 s window over the 5 s clip sees N = 125 frames; 32
    /// frames at stride 5 span 160, so the offset is 0 and frame k shows source frame 5k mod 125.
    /// (Past frame 109 the counter's RGB saturates at 255, so the check avoids those.)
    func testShortVideoWrapsAround() throws {
        let policy = ClipPolicy(windowSeconds: 10, frames: 32, stride: 5)
        let crop = try MediaDecoder().decode(fixture("counter_25fps_5s.mp4"), policy: policy).windows[0].videoCrops[0]
        XCTAssertEqual([0, 20, 25, 26, 31].map { sourceFrame(crop, frame: $0) }, [0, 100, 0, 5, 30])
    }

    /// 25 s of video with sound: three windows (0, 10, 15 s), each with its own crop and waveform.
    func testLongVideoWindowsStayAligned() throws {
        let clip = try MediaDecoder().decode(fixture("long_25s.mp4"), policy: ClipPolicy())
        XCTAssertEqual(clip.windows.count, 3)
        XCTAssertTrue(clip.windows.allSatisfy { $0.waveform?.count == 160_000 && $0.videoCrops.count == 1 })
        XCTAssertNotEqual(clip.windows[0].videoCrops[0], clip.windows[1].videoCrops[0])
    }

    /// 25 s with 4 crops is 3 windows x 4 = 12 frame sets: refused before any frame is decoded past the cap.
    func testVideoRowsAreCapped() throws {
        let policy = ClipPolicy(crops: 4)
        XCTAssertThrowsError(try MediaDecoder(limits: MediaLimits(maxVideoRows: 8)).decode(fixture("long_25s.mp4"), policy: policy)) {
            XCTAssertEqual($0 as? MediaError, .tooMuchVideo(windows: 3, crops: 4, limit: 8))
        }
        XCTAssertEqual(try MediaDecoder(limits: MediaLimits(maxVideoRows: 12)).decode(fixture("long_25s.mp4"), policy: policy)
            .windows.map(\.videoCrops.count), [4, 4, 4])
    }

    /// WebM as browsers record it (written to a pipe: no duration or cues in the header) still decodes.
    func testWebMWithoutDuration() throws {
        let clip = try MediaDecoder().decode(fixture("no_duration.webm"), policy: ClipPolicy())
        XCTAssertFalse(clip.hasAudio)
        XCTAssertEqual(clip.info.durationSeconds, 1, accuracy: 0.05)
        assertColour(pixel(clip.windows[0].videoCrops[0], frame: 8, row: 112, column: 150), blue)
    }

    /// Sound starting 0.5 s after the picture is shifted onto the clip's timeline: silence first, then the sine.
    func testLateAudioIsAligned() throws {
        let clip = try MediaDecoder().decode(fixture("late_audio.mp4"), policy: ClipPolicy())
        let waveform = try XCTUnwrap(clip.windows[0].waveform)
        XCTAssertEqual(clip.info.durationSeconds, 2, accuracy: 0.05)
        XCTAssertLessThan(waveform[0..<6400].map { abs($0) }.max()!, 0.01, "AAC pre-echo reaches ~60 ms before the onset")
        XCTAssertGreaterThan(waveform[8400..<12000].map { abs($0) }.max()!, 0.4)
        // Audio alone is not shifted: there is no picture to line it up with.
        let alone = try XCTUnwrap(MediaDecoder().decode(fixture("late_audio.mp4"), policy: ClipPolicy(wantVideo: false)).windows[0].waveform)
        XCTAssertGreaterThan(alone[400..<4000].map { abs($0) }.max()!, 0.4)
    }

    func testModalitiesFollowThePolicy() throws {
        let bytes = try fixture("bars_h264_aac.mp4")
        let audioOnly = try MediaDecoder().decode(bytes, policy: ClipPolicy(wantVideo: false))
        XCTAssertTrue(audioOnly.hasAudio)
        XCTAssertFalse(audioOnly.hasVideo)
        let videoOnly = try MediaDecoder().decode(bytes, policy: ClipPolicy(wantAudio: false))
        XCTAssertFalse(videoOnly.hasAudio)
        XCTAssertTrue(videoOnly.hasVideo)
        for name in ["audio_only_48k_mono_1s.mp4", "sine_22k_mono_1s_cover_art.mp3"] {
            let soundOnly = try MediaDecoder().decode(fixture(name), policy: ClipPolicy())
            XCTAssertTrue(soundOnly.hasAudio, name)
            XCTAssertFalse(soundOnly.hasVideo, "\(name): a video model gets no crops for a file without moving pictures; the server decides")
        }
    }
}
