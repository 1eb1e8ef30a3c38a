import AVMAE
import Foundation
import XCTest

/// `avmae-serve run --clip` shows what the server's model sees: its scores must be the ones /v1/classify answers
/// for the same file, and its inputs must have the shapes and times the spec gives.
final class RunClipTests: SharedDaemonTestCase {
    private func runClip(_ file: URL, crops: Int) throws -> SafeTensorsFile {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("run-clip-\(UUID().uuidString).safetensors")
        let process = Process()
        process.executableURL = try RunningDaemon.binary()
        process.arguments = ["run", "--bundle", daemon.bundle.path, "--clip", file.path, "--crops", String(crops),
                             "--out", out.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return try SafeTensorsFile(path: out.path)
    }

    private func httpScores(_ file: URL, contentType: String, crops: Int) throws -> [Int: Float] {
        let response = try Curl.run(port: port, path: "/v1/classify?top_k=527&crops=\(crops)",
                                    headers: ["Content-Type": contentType], bodyFile: file)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let labels = (response.json["labels"] as? [[String: Any]]) ?? []
        XCTAssertEqual(labels.count, 527)
        return Dictionary(uniqueKeysWithValues: labels.map { (($0["index"] as? Int) ?? -1, Float(($0["score"] as? Double) ?? .nan)) })
    }

    func testScoresEqualClassifyForVideoWithFourCrops() throws {
        let out = try runClip(Fixture.clip, crops: 4)
        let scores = try out.tensor("scores").data
        let served = try httpScores(Fixture.clip, contentType: "video/mp4", crops: 4)
        for (index, score) in served { XCTAssertEqual(scores[index], score, accuracy: 1e-6 * max(1, abs(score)), "class \(index)") }

        let config = try Model(bundle: daemon.bundle).config
        XCTAssertEqual(out.entries["frames"]?.shape, [1, 4, config.frames, 224, 224, 3])
        XCTAssertEqual(out.entries["frames"]?.dtype, "U8")
        let times = try out.tensor("frame_times").data  // (1, 4, T)
        XCTAssertEqual(times.count, 4 * config.frames)
        for crop in 0..<4 {
            // A 3 s clip in a 10 s window: 75 frames at 25 fps, indices stride apart, wrapping past the end.
            let row = times[(crop * config.frames)..<((crop + 1) * config.frames)]
            XCTAssertTrue(row.allSatisfy { $0 >= 0 && $0 < 3 }, "crop \(crop): \(row)")
        }
        XCTAssertEqual(try out.tensor("waveform").shape, [1, config.windowSamples])
        XCTAssertEqual(try out.tensor("logits").shape, [1, 4, config.numClasses])
    }

    func testScoresEqualClassifyForLongAudio() throws {
        let out = try runClip(Fixture.long, crops: 1)
        let scores = try out.tensor("scores").data
        let served = try httpScores(Fixture.long, contentType: "audio/flac", crops: 1)
        for (index, score) in served { XCTAssertEqual(scores[index], score, accuracy: 1e-6 * max(1, abs(score)), "class \(index)") }
        XCTAssertEqual(try out.tensor("window_starts").data, [0, 10, 15])
        XCTAssertEqual(try out.tensor("log_mel").shape.prefix(1), [3])
        XCTAssertNil(out.entries["frames"])
    }
}
