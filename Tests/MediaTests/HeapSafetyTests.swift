import Foundation
import XCTest
import Media

/// The shapes that corrupted the heap (issue 11): swscale wrote whole SIMD words past a `width * 3`-stride RGB
/// destination. They must decode to ordinary crops, in-process and with a guard page after every C-bound buffer.
final class HeapSafetyTests: XCTestCase {
    static let regressions = [
        "regress_h264_360x640.mp4", "regress_h264_360x640_rotated_audio.mp4", "regress_h264_1080x1920.mp4",
        "regress_h264_361x203.mp4", "regress_vp9_200x720.webm",
    ]

    func testShapesThatCorruptedTheHeapDecodeToOrdinaryCrops() throws {
        for name in Self.regressions {
            for crops in [1, 4] {
                let clip = try MediaDecoder().decode(fixture(name), policy: ClipPolicy(crops: crops))
                XCTAssertEqual(clip.windows.count, 1, name)
                let frames = try XCTUnwrap(clip.windows.first?.videoCrops, name)
                XCTAssertEqual(frames.count, crops, name)
                for crop in frames {
                    XCTAssertEqual(crop.count, 16 * 224 * 224 * 3, name)
                    // testsrc2 is busy everywhere: a crop of one colour would mean the rows were read wrongly.
                    XCTAssertGreaterThan(Set(crop.prefix(224 * 224 * 3)).count, 50, name)
                }
            }
        }
    }

    /// The portrait phone shape shows portrait: the stored 360x640 turned by its 90-degree display matrix is
    /// 640x360 on screen, so the same crop differs from the unrotated file's.
    func testRotatedPortraitDiffersFromUnrotated() throws {
        let plain = try MediaDecoder().decode(fixture("regress_h264_360x640.mp4"), policy: ClipPolicy())
        let turned = try MediaDecoder().decode(fixture("regress_h264_360x640_rotated_audio.mp4"), policy: ClipPolicy())
        XCTAssertEqual(turned.info.video?.rotation, 90)
        XCTAssertTrue(turned.hasAudio)
        XCTAssertNotEqual(plain.windows[0].videoCrops[0].prefix(224 * 224 * 3), turned.windows[0].videoCrops[0].prefix(224 * 224 * 3))
    }

    /// `avmae-serve decode` with AVMAE_GUARD_PAGES=1: every buffer handed to FFmpeg or libsndfile ends at an
    /// inaccessible page, so an over-write kills the process with SIGSEGV instead of passing unseen. (With the old
    /// width*3 stride all five regression files died this way.)
    func testEveryVideoFixtureDecodesWithGuardPages() throws {
        guard let bin = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"] else {
            throw XCTSkip("NOT RUN: set AVMAE_SERVE_BIN to the built avmae-serve binary (Tests/run.sh does)")
        }
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
            ["mp4", "mov", "mkv", "webm", "avi", "ts", "wav", "flac", "mp3", "ogg", "opus", "m4a"].contains(($0 as NSString).pathExtension)
        }.sorted()
        XCTAssertGreaterThan(names.count, 30)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["decode", "--crops", "4"] + names.map { folder.appendingPathComponent($0).path }
        process.environment = ProcessInfo.processInfo.environment.merging(["AVMAE_GUARD_PAGES": "1"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "the decoder died of a signal (\(process.terminationStatus))")
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, names.count)
        for name in Self.regressions {
            let line = try XCTUnwrap(lines.first { $0.contains("\"\(name)") || $0.contains("/\(name)\"") }, name)
            XCTAssertTrue(line.contains("\"ok\":true"), "\(name): \(line)")
        }
    }
}
