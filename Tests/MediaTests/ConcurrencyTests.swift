import Foundation
import XCTest
import Media

final class ConcurrencyTests: XCTestCase {
    /// One decoder shared by several threads gives every thread the same result as a lone call.
    func testConcurrentDecodesAgree() throws {
        let decoder = MediaDecoder()
        let names = ["bars_h264_aac.mp4", "sine_44k_stereo_1s.flac", "bars_vp9_opus.webm", "sine_22k_mono_1s.mp3"]
        let inputs = try names.map { try fixture($0) }
        let expected = try inputs.map { try decoder.decode($0, policy: ClipPolicy()).windows[0] }
        let results = ResultBox(count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            results.set(i, try? decoder.decode(inputs[i % inputs.count], policy: ClipPolicy()).windows[0])
        }
        for i in 0..<8 {
            let window = try XCTUnwrap(results.get(i), "thread \(i)")
            XCTAssertEqual(window.waveform, expected[i % inputs.count].waveform, names[i % inputs.count])
            XCTAssertEqual(window.videoCrops, expected[i % inputs.count].videoCrops, names[i % inputs.count])
        }
    }
}

/// Collects per-thread results; the lock makes it safe to share with concurrentPerform's closure.
private final class ResultBox: @unchecked Sendable {
    private var values: [ClipWindow?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: ClipWindow?) { lock.lock(); values[i] = value; lock.unlock() }
    func get(_ i: Int) -> ClipWindow? { lock.lock(); defer { lock.unlock() }; return values[i] }
}
