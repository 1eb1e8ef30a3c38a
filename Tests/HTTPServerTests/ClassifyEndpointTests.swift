import AVMAE
import Media
import Serving
import XCTest

/// POST /v1/classify on a real daemon with real media, checked against the model called directly.
final class ClassifyEndpointTests: SharedDaemonTestCase {
    /// Probabilities for the first window of `file`, computed without the server: decode, one model call, scores.
    private func directScores(_ file: URL, want: Set<Modality>) throws -> [Float] {
        let model = try Model(bundle: daemon.bundle)
        let decoder = MediaClipDecoder(config: model.config, limits: MediaLimits(), hopSeconds: nil)
        let window = try decoder.decode(Array(try Data(contentsOf: file)), want: want, crops: .one).windows[0]
        var input = ModelInput()
        if want.contains(.audio), let waveform = window.waveform {
            input.waveform = Tensor(shape: [1, waveform.count], data: waveform)
        }
        if want.contains(.video), let crop = window.videoCrops.first {
            input.frames = .bytes(shape: [1, model.config.frames, 224, 224, 3], crop)
        }
        let output = try model.run(input, workspace: model.makeWorkspace())
        return model.scores(logits: try XCTUnwrap(output.logits)).data
    }

    private func labels(_ response: Curl.Response) -> [(index: Int, score: Double)] {
        ((response.json["labels"] as? [[String: Any]]) ?? []).map {
            (($0["index"] as? Int) ?? -1, ($0["score"] as? Double) ?? .nan)
        }
    }

    func testRawWavAnswersTheSameTopLabelsAsADirectModelCall() throws {
        let response = try Curl.run(port: port, path: "/v1/classify?top_k=5", headers: ["Content-Type": "audio/wav"],
                                    bodyFile: Fixture.tone)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let json = response.json
        XCTAssertEqual(json["model"] as? String, "avmae-demo")
        XCTAssertEqual(json["label_set"] as? String, "audioset")
        XCTAssertEqual(json["modalities"] as? [String], ["audio"])
        XCTAssertEqual(json["windows_used"] as? Int, 1)
        XCTAssertEqual(json["duration_seconds"] as? Double ?? 0, 10, accuracy: 0.01)
        XCTAssertEqual(json["request_id"] as? String, response.headers["x-request-id"])
        let timings = try XCTUnwrap(json["timings_ms"] as? [String: Double])
        XCTAssertGreaterThanOrEqual(timings["total"] ?? 0, (timings["decode"] ?? 0) + (timings["inference"] ?? 0))

        let expected = try directScores(Fixture.tone, want: [.audio])
        let best = expected.indices.sorted { expected[$0] > expected[$1] }.prefix(5)
        let got = labels(response)
        XCTAssertEqual(got.map(\.index), Array(best))
        for (label, index) in zip(got, best) {
            // Batched and single-row sgemm may round differently; 1e-4 is far below any gap between labels here.
            XCTAssertEqual(label.score, Double(expected[index]), accuracy: 1e-4)
        }
        let first = try XCTUnwrap((json["labels"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["id"] as? String, try Model(bundle: daemon.bundle).labels[best.first!].mid)
    }

    /// End to end against a recorded answer (Fixtures/demo-seed7-expected.json): decode, frontend, model and
    /// scoring together, so a regression in any of them shows even where the direct-call comparison moves too.
    func testAnswersMatchTheRecordedGolden() throws {
        let url = Bundle.module.url(forResource: "demo-seed7-expected", withExtension: "json", subdirectory: "Fixtures")!
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        for (file, type) in [(Fixture.tone, "audio/wav"), (Fixture.clip, "video/mp4")] {
            let want = try XCTUnwrap(expected[file.lastPathComponent] as? [[Double]])
            let labels = try XCTUnwrap(try Curl.run(port: port, path: "/v1/classify?top_k=3", headers: ["Content-Type": type],
                                                    bodyFile: file).json["labels"] as? [[String: Any]])
            XCTAssertEqual(labels.compactMap { $0["index"] as? Int }, want.map { Int($0[0]) }, file.lastPathComponent)
            for (label, row) in zip(labels, want) {
                XCTAssertEqual(try XCTUnwrap(label["score"] as? Double), row[1], accuracy: 1e-4, file.lastPathComponent)
            }
        }
    }

    func testMultipartFileAnswersLikeTheRawBody() throws {
        let raw = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                               bodyFile: Fixture.tone)
        let form = try Curl.run(port: port, path: "/v1/classify", form: Fixture.tone)
        XCTAssertEqual(form.status, 200, String(decoding: form.body, as: UTF8.self))
        XCTAssertEqual(labels(form).map(\.index), labels(raw).map(\.index))
        for (a, b) in zip(labels(form), labels(raw)) { XCTAssertEqual(a.score, b.score, accuracy: 1e-6) }
    }

    func testVideoWithSoundUsesBothBranchesAndFourCrops() throws {
        let auto = try Curl.run(port: port, path: "/v1/classify?top_k=3", headers: ["Content-Type": "video/mp4"],
                                bodyFile: Fixture.clip)
        XCTAssertEqual(auto.status, 200, String(decoding: auto.body, as: UTF8.self))
        XCTAssertEqual(auto.json["modalities"] as? [String], ["audio", "video"])
        let expected = try directScores(Fixture.clip, want: [.audio, .video])
        for label in labels(auto) { XCTAssertEqual(label.score, Double(expected[label.index]), accuracy: 1e-4) }

        let fourCrops = try Curl.run(port: port, path: "/v1/classify?top_k=3&crops=4",
                                     headers: ["Content-Type": "video/mp4"], bodyFile: Fixture.clip)
        XCTAssertEqual(fourCrops.status, 200)
        XCTAssertEqual(labels(fourCrops).count, 3)

        let videoOnly = try Curl.run(port: port, path: "/v1/classify?modality=video",
                                     headers: ["Content-Type": "video/mp4"], bodyFile: Fixture.clip)
        XCTAssertEqual(videoOnly.status, 200)
        XCTAssertEqual(videoOnly.json["modalities"] as? [String], ["video"])
    }

    func testLongClipReturnsATimelineAndAggregates() throws {
        let response = try Curl.run(port: port, path: "/v1/classify?top_k=4&windows=true",
                                    headers: ["Content-Type": "audio/flac"], bodyFile: Fixture.long)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let windows = try XCTUnwrap(response.json["windows_used"] as? Int)
        XCTAssertGreaterThanOrEqual(windows, 2)
        let timeline = try XCTUnwrap(response.json["timeline"] as? [[String: Any]])
        XCTAssertEqual(timeline.count, windows)
        let starts = timeline.compactMap { $0["start_seconds"] as? Double }
        XCTAssertEqual(starts, starts.sorted())
        XCTAssertEqual(starts.first, 0)
        // A max over windows is never below the mean.
        let maxed = try Curl.run(port: port, path: "/v1/classify?top_k=1&aggregate=max",
                                 headers: ["Content-Type": "audio/flac"], bodyFile: Fixture.long)
        let meaned = try Curl.run(port: port, path: "/v1/classify?top_k=1",
                                  headers: ["Content-Type": "audio/flac"], bodyFile: Fixture.long)
        XCTAssertGreaterThanOrEqual(labels(maxed)[0].score, labels(meaned)[0].score - 1e-6)
    }

    func testThresholdLeavesOutLowScores() throws {
        let all = try Curl.run(port: port, path: "/v1/classify?top_k=10", headers: ["Content-Type": "audio/wav"],
                               bodyFile: Fixture.tone)
        let cut = labels(all)[4].score
        let some = try Curl.run(port: port, path: "/v1/classify?top_k=10&threshold=\(cut)",
                                headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
        XCTAssertEqual(labels(some).map(\.index), Array(labels(all).map(\.index).prefix(5)))
    }
}
