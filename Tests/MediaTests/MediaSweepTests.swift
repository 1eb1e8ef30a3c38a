import Foundation
import XCTest

/// A bounded slice of the media sweep (bench/media-sweep, issue 11). `generate.py --subset smoke` writes 27 small
/// files at test time: the riskiest shapes (odd, 1-2 px and 15 px sides, portrait, every rotation, 10-bit, NV12,
/// gray, RGB, each codec and container, 1-8 channels at 8-192 kHz, PCM from u8 to double). `avmae-serve decode
/// --crops 4` decodes them with a guard page after every buffer handed to FFmpeg or libsndfile, so an over-write
/// kills the process. Every file must decode to what it holds, or be refused with the expected error.
final class MediaSweepTests: XCTestCase {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            struct Factors: Decodable {
                var container: String
                var codec: String?
                var width: Int?
                var height: Int?
                var rotation: Int?
                var channels: Int
                var sample_rate: Int?
            }
            var file: String
            var factors: Factors
            var expect: String
        }
        var files: [Entry]
    }

    struct Report: Decodable {
        var file: String
        var ok: Bool
        var error: String?
        var video: String?
        var audio: String?
    }

    /// Tests/MediaTests/MediaSweepTests.swift -> three levels up.
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testRiskiestShapesDecodeOrAreRefusedClearlyWithGuardPages() throws {
        guard let bin = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"] else {
            throw XCTSkip("NOT RUN: set AVMAE_SERVE_BIN to the built avmae-serve binary (Tests/run.sh does)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-media-sweep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }

        let script = Self.repository.appendingPathComponent("bench/media-sweep/generate.py").path
        let generated = try Self.run("/usr/bin/env", ["python3", script, "--subset", "smoke", folder.path])
        XCTAssertEqual(generated.status, 0, generated.output)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        XCTAssertEqual(manifest.files.count, 27)
        let paths = manifest.files.map { folder.appendingPathComponent($0.file).path }

        let decoded = try Self.run(bin, ["decode", "--crops", "4"] + paths, environment: ["AVMAE_GUARD_PAGES": "1"],
                                   mergingErrors: false)
        XCTAssertEqual(decoded.reason, .exit, "the decoder died of signal \(decoded.status)")
        let reports = try decoded.output.split(separator: "\n").map { try JSONDecoder().decode(Report.self, from: Data($0.utf8)) }
        let byFile = Dictionary(reports.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(reports.count, paths.count)

        for (entry, path) in zip(manifest.files, paths) {
            let report = try XCTUnwrap(byFile[path], "no report for \(entry.file)")
            let f = entry.factors
            if entry.expect == "refused" {
                XCTAssertFalse(report.ok, entry.file)
                XCTAssertEqual(report.error, "no usable stream: the video is \(f.width!)x\(f.height!), smaller than 16 px on a side", entry.file)
                continue
            }
            XCTAssertTrue(report.ok, "\(entry.file): \(report.error ?? "")")
            if let codec = f.codec, let width = f.width, let height = f.height, min(width, height) >= 16 {
                XCTAssertEqual(report.video, "\(codec) \(width)x\(height) 25.0 fps rotate \(f.rotation ?? 0)", entry.file)
            } else {
                XCTAssertNil(report.video, "\(entry.file): a picture under 16 px is no video; its sound alone decodes")
            }
            if let rate = f.sample_rate {
                XCTAssertTrue(report.audio?.hasSuffix(" \(rate) Hz x\(f.channels)") == true, "\(entry.file): \(report.audio ?? "no audio")")
            } else {
                XCTAssertNil(report.audio, entry.file)
            }
        }
    }

    /// The sweep's memcheck findings, one fixture each: Scaler passed sws_scale one destination pointer and one
    /// stride where it reads four (swscale's general path, taken for the odd-height MJPEG, branched on our stack
    /// beyond them); and RGB rows of 64 bytes for an 18-pixel-wide VP9 frame, where swscale's x86 converter writes
    /// whole 8-pixel groups and so left the last 2 pixels unwritten for CropResize to read.
    /// Valgrind 3.19 cannot read the debug info Swift 6.3 writes, so it runs a stripped copy of the binary.
    func testSwscaleRegressionsDecodeWithNoMemcheckErrors() throws {
        guard let bin = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"] else {
            throw XCTSkip("NOT RUN: set AVMAE_SERVE_BIN to the built avmae-serve binary (Tests/run.sh does)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/valgrind") else {
            throw XCTSkip("NOT RUN: valgrind is not installed (deploy/setup.sh installs it)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-memcheck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stripped = folder.appendingPathComponent("avmae-serve").path
        let strip = try Self.run("/usr/bin/env", ["strip", "-o", stripped, bin])
        XCTAssertEqual(strip.status, 0, strip.output)
        let fixtures = try ["regress_mjpeg_200x17_rotated.mov", "regress_vp9_18x32.webm"].map {
            try XCTUnwrap(Bundle.module.url(forResource: $0, withExtension: nil, subdirectory: "Fixtures")).path
        }
        let log = folder.appendingPathComponent("memcheck.log")

        let decoded = try Self.run("/usr/bin/valgrind", ["--log-file=\(log.path)", stripped, "decode", "--crops", "4"] + fixtures,
                                   mergingErrors: false)
        XCTAssertEqual(decoded.reason, .exit)
        for video in ["mjpeg 200x17 25.0 fps rotate 90", "vp9 18x32 25.0 fps rotate 0"] {
            XCTAssertTrue(decoded.output.contains("\"video\":\"\(video)\""), decoded.output)
        }
        XCTAssertFalse(decoded.output.contains("\"ok\":false"), decoded.output)
        let report = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(report.contains("ERROR SUMMARY: 0 errors"), report)
    }

    struct Finished {
        var reason: Process.TerminationReason
        var status: Int32
        var output: String
    }

    /// Runs a child to completion and returns its stdout (generate.py reports on stderr, so that is merged in;
    /// the decoder's stderr holds only its count of failures and is dropped).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    mergingErrors: Bool = true) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = mergingErrors ? output : FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Finished(reason: process.terminationReason, status: process.terminationStatus,
                        output: String(decoding: data, as: UTF8.self))
    }
}
