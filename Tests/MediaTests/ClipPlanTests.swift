import XCTest
import Media

/// The pure parts: window starts, looping, frame times.
final class ClipPlanTests: XCTestCase {
    func testWindowStarts() {
        XCTAssertEqual(Windowing.starts(totalSamples: 50, window: 100, hop: 100), [0])
        XCTAssertEqual(Windowing.starts(totalSamples: 100, window: 100, hop: 100), [0])
        XCTAssertEqual(Windowing.starts(totalSamples: 101, window: 100, hop: 100), [0, 1])
        XCTAssertEqual(Windowing.starts(totalSamples: 250, window: 100, hop: 100), [0, 100, 150])
        XCTAssertEqual(Windowing.starts(totalSamples: 300, window: 100, hop: 100), [0, 100, 200])
        XCTAssertEqual(Windowing.starts(totalSamples: 250, window: 100, hop: 50), [0, 50, 100, 150])
    }

    func testLoopingWaveform() {
        XCTAssertEqual(Windowing.waveform([1, 2, 3], start: 0, length: 8), [1, 2, 3, 1, 2, 3, 1, 2])
        XCTAssertEqual(Windowing.waveform([1, 2, 3, 4], start: 1, length: 2), [2, 3])
    }

    /// AudioSet pretrained: 10 s at 25 fps is N = 250; 16 frames at stride 4 from (250 - 64) / 2 = 93.
    func testMiddleClipTimes() {
        let times = FrameSampling.times(windowStart: 0, clipSeconds: 10, policy: ClipPolicy())
        XCTAssertEqual(times.count, 1)
        XCTAssertEqual(times[0].first!, 93.0 / 25, accuracy: 1e-9)
        XCTAssertEqual(times[0].last!, 153.0 / 25, accuracy: 1e-9)
    }

    /// VGGSound finetuned multi-crop: 8 s, N = 200, 32 frames at stride 2: offsets linspace(0, 136, 4) = 0, 45, 90, 136.
    func testFourCropTimes() {
        let policy = ClipPolicy(windowSeconds: 8, frames: 32, stride: 2, resizeShort: 256, crops: 4)
        let times = FrameSampling.times(windowStart: 8, clipSeconds: 20, policy: policy)
        XCTAssertEqual(times.map { (($0[0] - 8) * 25).rounded() }, [0, 45, 90, 136])
    }
}
