import AVMAE
import XCTest

/// `serve --precision int8|bf16` end to end: the daemon says which engine runs, and answers the recorded fp32
/// golden (Fixtures/demo-seed7-expected.json) with the same top-3 labels and scores within 1e-2.
final class LowPrecisionServeTests: XCTestCase {
    func testLowPrecisionDaemonAnswersTheFp32Golden() throws {
        let precisions = ComputeEngine.availablePrecisions.filter { $0 != .fp32 }
        try XCTSkipIf(precisions.isEmpty, "NOT RUN: this CPU runs neither int8 nor bf16 fast (oneDNN ISA \(ComputeEngine.instructionSet))")
        let url = Bundle.module.url(forResource: "demo-seed7-expected", withExtension: "json", subdirectory: "Fixtures")!
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        for precision in precisions {
            let daemon = try RunningDaemon(settings: ["precision": precision.rawValue])
            defer { _ = daemon.terminateAndWait() }
            XCTAssertTrue(daemon.log.contains("compute=\(precision) on oneDNN"), daemon.log)
            for (file, type) in [(Fixture.tone, "audio/wav"), (Fixture.clip, "video/mp4")] {
                let want = try XCTUnwrap(expected[file.lastPathComponent] as? [[Double]])
                let response = try Curl.run(port: daemon.port, path: "/v1/classify?top_k=3", headers: ["Content-Type": type], bodyFile: file)
                XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
                let labels = try XCTUnwrap(response.json["labels"] as? [[String: Any]])
                XCTAssertEqual(labels.compactMap { $0["index"] as? Int }, want.map { Int($0[0]) }, "\(precision) \(file.lastPathComponent)")
                for (label, row) in zip(labels, want) {
                    XCTAssertEqual(try XCTUnwrap(label["score"] as? Double), row[1], accuracy: 1e-2, "\(precision) \(file.lastPathComponent)")
                }
            }
        }
    }
}
