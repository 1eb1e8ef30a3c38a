import AVMAE
import DecodeIsolation
import Foundation
import Logging
import Media
import Metrics
import Serving
import XCTest

/// The parent side against real workers (the avmae-serve binary, sandboxed): the same windows and the same
/// refusals as decoding in-process, and a worker that dies or hits its memory limit fails only its own clip.
final class WorkerDecodingTests: XCTestCase {
    private let config = DemoBundle.config()
    private let limits = MediaLimits(maxVideoRows: 32)

    func testWindowsMatchInProcessDecodingBitForBit() throws {
        let pool = try makePool()
        defer { pool.shutdown() }
        let isolated = ProcessClipDecoder(pool: pool, config: config, limits: limits, hopSeconds: nil)
        let inProcess = MediaClipDecoder(config: config, limits: limits, hopSeconds: nil)
        // Audio only, several windows (more than the window credit), audio + video with 1 and 4 crops.
        let cases: [(String, CropCount)] = [("sine_44k_stereo_1s.wav", .one), ("sine_8k_mono_25s.wav", .one),
                                            ("bars_h264_aac.mp4", .four), ("bars_vp9_opus.webm", .one),
                                            ("long_25s.mp4", .one)]
        for (name, crops) in cases {
            let bytes = try fixture(name)
            let want: Set<Modality> = [.audio, .video]
            let expected = try inProcess.decode(bytes, want: want, crops: crops)
            let got = try isolated.decode(bytes, want: want, crops: crops)
            XCTAssertGreaterThan(got.windows.count, 0, name)
            XCTAssertEqual(got.durationSeconds, expected.durationSeconds, name)
            XCTAssertEqual(got.hasAudio, expected.hasAudio, name)
            XCTAssertEqual(got.hasVideo, expected.hasVideo, name)
            XCTAssertEqual(got.windows.count, expected.windows.count, name)
            for (a, b) in zip(got.windows, expected.windows) {
                XCTAssertEqual(a.index, b.index, name)
                XCTAssertEqual(a.startSeconds, b.startSeconds, name)
                XCTAssertEqual(a.waveform, b.waveform, "\(name) window \(a.index) waveform")
                XCTAssertEqual(a.videoCrops.count, b.videoCrops.count, name)
                XCTAssertTrue(a.videoCrops == b.videoCrops, "\(name) window \(a.index) frames differ")
                XCTAssertEqual(a.frameTimes, b.frameTimes, "\(name) window \(a.index) frame times differ")
            }
        }
    }

    func testRefusalsMatchInProcessDecoding() throws {
        let pool = try makePool()
        defer { pool.shutdown() }
        let isolated = ProcessClipDecoder(pool: pool, config: config, limits: limits, hopSeconds: nil)
        let inProcess = MediaClipDecoder(config: config, limits: limits, hopSeconds: nil)
        let garbage = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for (name, bytes) in [("empty", []), ("garbage", garbage), ("truncated", Array(try fixture("bars_h264_aac.mp4").prefix(3000)))] {
            XCTAssertEqual(refusal { try isolated.decode(bytes, want: [.audio], crops: .one) },
                           refusal { try inProcess.decode(bytes, want: [.audio], crops: .one) }, name)
            XCTAssertNotNil(refusal { try isolated.decode(bytes, want: [.audio], crops: .one) }, name)
        }
        // No usable stream is not an error at this level: no windows, and why.
        let tiny = try fixture("tiny_1x1.mkv")
        XCTAssertEqual(try isolated.decode(tiny, want: [.video], crops: .one).unusableReason,
                       try inProcess.decode(tiny, want: [.video], crops: .one).unusableReason)
    }

    func testAKilledWorkerFailsOnlyItsClipAndIsReplaced() throws {
        let pool = try makePool(workers: 1)
        defer { pool.shutdown() }
        let decoder = ProcessClipDecoder(pool: pool, config: config, limits: limits, hopSeconds: nil)
        let long = try fixture("long_25s.mp4")
        let victim = try XCTUnwrap(WorkerProcesses.children().first)
        let outcome = Outcome()
        let decoding = Thread { outcome.error = self.refusal { try decoder.decode(long, want: [.audio, .video], crops: .four) } }
        decoding.start()
        XCTAssertTrue(try WorkerProcesses.waitUntilBusy(victim, timeout: 30), "the worker never took the clip")
        kill(victim, SIGKILL)
        XCTAssertTrue(outcome.wait(timeout: 30))
        guard case .undecodableClip(let message)? = outcome.error else {
            return XCTFail("expected undecodable_clip, got \(String(describing: outcome.error))")
        }
        XCTAssertEqual(message, "the decoder failed on this clip (its process was killed by SIGKILL)")
        // The pool has a new worker, and it decodes.
        XCTAssertFalse(WorkerProcesses.children().contains(victim))
        XCTAssertEqual(WorkerProcesses.children().count, 1)
        XCTAssertEqual(try decoder.decode(try fixture("sine_16k_mono_1s.wav"), want: [.audio], crops: .one).windows.count, 1)
    }

    func testMemoryLimitIsAClearError() throws {
        var configuration = DecodeWorkerPool.Configuration()
        configuration.memoryBytes = 48 << 20
        let pool = try makePool(configuration)
        defer { pool.shutdown() }
        let decoder = ProcessClipDecoder(pool: pool, config: config, limits: limits, hopSeconds: nil)
        // 3 windows x 4 crops of 32 frames of 224x224x3 bytes: 58 MB, well past 48 MiB.
        let error = refusal { try decoder.decode(try fixture("long_25s.mp4"), want: [.audio, .video], crops: .four) }
        XCTAssertEqual(error, .undecodableClip("the decoder ran out of its 48 MiB memory limit on this clip"))
        // Small clips still fit.
        XCTAssertEqual(try decoder.decode(try fixture("sine_16k_mono_1s.wav"), want: [.audio], crops: .one).windows.count, 1)
    }

    // MARK: helpers

    private func makePool(workers: Int = 2) throws -> DecodeWorkerPool {
        var configuration = DecodeWorkerPool.Configuration()
        configuration.workers = workers
        return try makePool(configuration)
    }

    private func makePool(_ configuration: DecodeWorkerPool.Configuration) throws -> DecodeWorkerPool {
        var configuration = configuration
        configuration.executable = try WorkerBinary.path
        return try DecodeWorkerPool(configuration: configuration, logger: Logger(label: "test"),
                                    metricsFactory: NOOPMetricsHandler.instance)
    }

    private func fixture(_ name: String) throws -> [UInt8] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MediaTests/Fixtures")
        return [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    private func refusal(_ body: () throws -> DecodedWindows) -> ServingError? {
        do { _ = try body(); return nil } catch { return error as? ServingError }
    }
}

/// The error a background decode ended with, handed to the test thread.
private final class Outcome: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    var error: ServingError? { didSet { done.signal() } }

    func wait(timeout: Double) -> Bool { done.wait(timeout: .now() + timeout) == .success }
}
