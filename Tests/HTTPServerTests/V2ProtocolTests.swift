import AVMAE
import Foundation
import XCTest

/// The Open Inference Protocol (KServe v2) on the real daemon: health, metadata, and infer with a clip or with raw
/// tensors, binary and JSON. What /v2 answers for a clip must be what /v1 answers for the same file.
final class V2ProtocolTests: SharedDaemonTestCase {
    private let model = DemoBundle.config().name

    /// The one version the model metadata lists; every versioned path and answer must use it.
    private func servedVersion() throws -> String {
        let versions = try XCTUnwrap(try Curl.run(port: port, path: "/v2/models/\(model)").json["versions"] as? [String])
        XCTAssertEqual(versions.count, 1)
        return try XCTUnwrap(versions.first)
    }

    private func infer(_ request: V2Request, path: String? = nil) throws -> Curl.Response {
        let (file, headerLength) = try request.write()
        defer { try? FileManager.default.removeItem(at: file) }
        return try Curl.run(port: port, path: path ?? "/v2/models/\(model)/infer",
                            headers: ["Inference-Header-Content-Length": "\(headerLength)",
                                      "Content-Type": "application/octet-stream"],
                            bodyFile: file)
    }

    /// /v1/classify's score for every class of `file`.
    private func v1Scores(_ file: URL, contentType: String) throws -> [Float] {
        let response = try Curl.run(port: port, path: "/v1/classify?top_k=527", headers: ["Content-Type": contentType],
                                    bodyFile: file)
        XCTAssertEqual(response.status, 200)
        var scores = [Float](repeating: .nan, count: 527)
        for label in (response.json["labels"] as? [[String: Any]]) ?? [] {
            scores[label["index"] as! Int] = Float(label["score"] as! Double)
        }
        return scores
    }

    private func assertClose(_ a: [Float]?, _ b: [Float], tolerance: Float = 1e-5, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        guard let a, a.count == b.count else {
            return XCTFail("\(what): \(a?.count ?? -1) values, expected \(b.count)", file: file, line: line)
        }
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): largest relative difference", file: file, line: line)
    }

    /// `run --clip`: the waveform, frames and log-mel the server's decoder gives for a file.
    private func decoded(_ file: URL) throws -> SafeTensorsFile {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("v2-run-\(UUID().uuidString).safetensors")
        let process = Process()
        process.executableURL = try RunningDaemon.binary()
        process.arguments = ["run", "--bundle", daemon.bundle.path, "--clip", file.path, "--out", out.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return try SafeTensorsFile(path: out.path)
    }

    func testHealthAndServerMetadata() throws {
        XCTAssertEqual(try Curl.run(port: port, path: "/v2/health/live").status, 200)
        XCTAssertEqual(try Curl.run(port: port, path: "/v2/health/ready").status, 200)
        XCTAssertEqual(try Curl.run(port: port, path: "/v2/models/\(model)/ready").status, 200)
        XCTAssertEqual(try Curl.run(port: port, path: "/v2/models/\(model)/versions/\(try servedVersion())/ready").status, 200)
        let server = try Curl.run(port: port, path: "/v2")
        XCTAssertEqual(server.json["name"] as? String, "avmae-serve")
        XCTAssertEqual(server.json["extensions"] as? [String], ["binary_tensor_data", "classification"])
    }

    func testModelMetadataDescribesEveryTensor() throws {
        let config = DemoBundle.config()
        let version = try servedVersion()
        XCTAssertFalse(version.isEmpty)
        for path in ["/v2/models/\(model)", "/v2/models/\(model)/versions/\(version)"] {
            let response = try Curl.run(port: port, path: path)
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.json["name"] as? String, model)
            XCTAssertEqual(response.json["versions"] as? [String], [version])
            func tensors(_ key: String) -> [String: [Int]] {
                Dictionary(uniqueKeysWithValues: ((response.json[key] as? [[String: Any]]) ?? []).map {
                    ("\($0["name"]!) \($0["datatype"]!)", $0["shape"] as? [Int] ?? [])
                })
            }
            XCTAssertEqual(tensors("inputs"), [
                "CLIP BYTES": [-1], "WAVEFORM FP32": [-1, config.windowSamples],
                "SPECTROGRAM FP32": [-1, config.spectrogramFrames, config.frontend.melBins],
                "FRAMES UINT8": [-1, config.frames, 224, 224, 3],
            ])
            XCTAssertEqual(tensors("outputs"), [
                "LOGITS FP32": [-1, 527], "PROBABILITIES FP32": [-1, 527],
                "AUDIO_EMBEDDING FP32": [-1, 64], "VIDEO_EMBEDDING FP32": [-1, 64],
            ])
        }
    }

    func testUnknownModelVersionAndPathAnswerInTheProtocolErrorShape() throws {
        for path in ["/v2/models/nope", "/v2/models/\(model)/versions/no-such-version", "/v2/models/nope/ready", "/v2/what"] {
            let response = try Curl.run(port: port, path: path)
            XCTAssertEqual(response.status, 404, path)
            XCTAssertFalse((response.json["error"] as? String ?? "").isEmpty, path)
        }
        let get = try Curl.run(port: port, path: "/v2/models/\(model)/infer")
        XCTAssertEqual(get.status, 405)
        XCTAssertEqual(get.headers["allow"], "POST")
        XCTAssertNotNil(get.json["error"] as? String)
    }

    func testBinaryClipGivesV1ScoresEmbeddingAndLabels() throws {
        var request = V2Request()
        try request.clip(Fixture.tone)
        request.outputs = [["name": "PROBABILITIES", "parameters": ["binary_data": true]],
                           ["name": "LOGITS", "parameters": ["classification": 3]],
                           ["name": "AUDIO_EMBEDDING"]]
        let response = try infer(request)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let answer = try V2Answer(response)
        XCTAssertEqual(answer.json["model_name"] as? String, model)
        XCTAssertEqual(answer.json["model_version"] as? String, try servedVersion())
        XCTAssertEqual(answer.shape("PROBABILITIES"), [1, 527])
        let v1 = try v1Scores(Fixture.tone, contentType: "audio/wav")
        assertClose(answer.floats("PROBABILITIES"), v1, "PROBABILITIES against /v1/classify")

        let embed = try Curl.run(port: port, path: "/v1/embed", headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
        let pooled = ((embed.json["embeddings"] as? [String: Any])?["audio"] as? [Double])?.map(Float.init) ?? []
        XCTAssertEqual(answer.shape("AUDIO_EMBEDDING"), [1, 64])
        assertClose(answer.floats("AUDIO_EMBEDDING"), pooled, "AUDIO_EMBEDDING against /v1/embed")

        // Classification of LOGITS ranks like the probabilities (sigmoid is monotonic): "score:index:label".
        let top = try XCTUnwrap(answer.strings("LOGITS"))
        XCTAssertEqual(answer.shape("LOGITS"), [1, 3])
        XCTAssertEqual(answer.outputs["LOGITS"]?["datatype"] as? String, "BYTES")
        let v1Top = v1.indices.sorted { v1[$0] != v1[$1] ? v1[$0] > v1[$1] : $0 < $1 }.prefix(3)
        XCTAssertEqual(top.map { Int($0.split(separator: ":")[1])! }, Array(v1Top))
        XCTAssertEqual(top.first?.split(separator: ":", maxSplits: 2).last.map(String.init),
                       String(format: "demo class %03d (meaningless)", v1Top.first!))
    }

    func testRawWaveformFramesAndSpectrogramGiveV1Scores() throws {
        let clip = try decoded(Fixture.clip)
        let config = DemoBundle.config()
        let v1 = try v1Scores(Fixture.clip, contentType: "video/mp4")
        let frames = try clip.bytes("frames")  // (1 window, 1 crop, T, 224, 224, 3)

        var waveform = V2Request()
        waveform.floats("WAVEFORM", shape: [1, config.windowSamples], try clip.tensor("waveform").data)
        waveform.binaryInput("FRAMES", datatype: "UINT8", shape: [1, config.frames, 224, 224, 3], bytes: Data(frames))
        let fromWaveform = try infer(waveform)
        XCTAssertEqual(fromWaveform.status, 200, String(decoding: fromWaveform.body, as: UTF8.self))
        let answer = try V2Answer(fromWaveform)
        assertClose(answer.floats("PROBABILITIES"), v1, "WAVEFORM + FRAMES against /v1/classify")
        XCTAssertEqual(Set(answer.outputs.keys), ["LOGITS", "PROBABILITIES", "AUDIO_EMBEDDING", "VIDEO_EMBEDDING"])

        var spectrogram = V2Request()
        spectrogram.floats("SPECTROGRAM", shape: [1, config.spectrogramFrames, config.frontend.melBins],
                           try clip.tensor("log_mel").data)
        spectrogram.binaryInput("FRAMES", datatype: "UINT8", shape: [1, config.frames, 224, 224, 3], bytes: Data(frames))
        spectrogram.outputs = [["name": "PROBABILITIES"]]
        let fromSpectrogram = try infer(spectrogram)
        XCTAssertEqual(fromSpectrogram.status, 200, String(decoding: fromSpectrogram.body, as: UTF8.self))
        let spectrogramAnswer = try V2Answer(fromSpectrogram)
        XCTAssertEqual(Array(spectrogramAnswer.outputs.keys), ["PROBABILITIES"])
        assertClose(spectrogramAnswer.floats("PROBABILITIES"), v1, "SPECTROGRAM + FRAMES against /v1/classify")
    }

    func testJSONWaveformBatchAnswersPerRowInJSON() throws {
        let waveform = try decoded(Fixture.tone).tensor("waveform").data
        let silence = [Float](repeating: 0, count: waveform.count)
        let body: [String: Any] = [
            "id": "batch-of-two",
            "inputs": [["name": "WAVEFORM", "datatype": "FP32", "shape": [2, waveform.count], "data": [waveform, silence]]],
            "outputs": [["name": "PROBABILITIES"], ["name": "LOGITS", "parameters": ["classification": 2]]],
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("v2-json-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let response = try Curl.run(port: port, path: "/v2/models/\(model)/infer",
                                    headers: ["Content-Type": "application/json"], bodyFile: file)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        XCTAssertNil(response.headers["inference-header-content-length"])
        let answer = try V2Answer(response)
        XCTAssertEqual(answer.json["id"] as? String, "batch-of-two")
        XCTAssertEqual(answer.shape("PROBABILITIES"), [2, 527])
        XCTAssertEqual(answer.shape("LOGITS"), [2, 2])
        XCTAssertEqual(answer.strings("LOGITS")?.count, 4)
        let probabilities = try XCTUnwrap(answer.floats("PROBABILITIES"))
        assertClose(Array(probabilities[..<527]), try v1Scores(Fixture.tone, contentType: "audio/wav"), "row 0 against /v1")
        XCTAssertNotEqual(Array(probabilities[..<527]), Array(probabilities[527...]), "silence scores like the tone")
    }
}
