import Foundation
import XCTest

/// The daemon with decode_isolation=process against the same daemon decoding in-process: the same answers, and
/// a decode worker killed mid-clip costs that one request (422) while the daemon keeps serving.
final class DecodeIsolationTests: XCTestCase {
    func testProcessIsolationGivesTheSameScoresAsInProcessDecoding() throws {
        let isolated = try RunningDaemon(settings: ["decode_isolation": "process"])
        let inProcess = try RunningDaemon(settings: ["decode_isolation": "none"])
        XCTAssertEqual(workers(of: isolated).count, 2, "decode_workers defaults to 2")
        XCTAssertEqual(workers(of: inProcess).count, 0)
        for (fixture, query) in [(Fixture.tone, "top_k=5"), (Fixture.long, "top_k=5&windows=true"),
                                 (Fixture.clip, "top_k=5&crops=4"), (Fixture.clip, "top_k=5&modality=video")] {
            let a = try classify(isolated, fixture, query)
            let b = try classify(inProcess, fixture, query)
            XCTAssertEqual(a.status, 200, "\(fixture.lastPathComponent) \(query)")
            XCTAssertEqual(b.status, 200)
            XCTAssertEqual(a.json["labels"] as? NSArray, b.json["labels"] as? NSArray, "\(fixture.lastPathComponent) \(query)")
            XCTAssertEqual(a.json["timeline"] as? NSArray, b.json["timeline"] as? NSArray)
            XCTAssertEqual(a.json["timeline"] != nil, query.contains("windows=true"))
            XCTAssertEqual(a.json["duration_seconds"] as? Double, b.json["duration_seconds"] as? Double)
        }
    }

    func testAWorkerKilledMidClipFailsOnlyThatRequest() throws {
        let daemon = try RunningDaemon(settings: ["decode_workers": "1"])
        let victim = try XCTUnwrap(workers(of: daemon).first)
        let long = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MediaTests/Fixtures/long_25s.mp4")
        let request = try Curl(port: daemon.port, path: "/v1/classify?crops=4",
                               headers: ["Content-Type": "video/mp4"], bodyFile: long)
        let deadline = Date(timeIntervalSinceNow: 30)
        while !isBusy(victim) && Date() < deadline { usleep(1000) }
        XCTAssertTrue(isBusy(victim), "the worker never took the clip")
        kill(victim, SIGKILL)
        let response = try request.finish()
        XCTAssertEqual(response.status, 422)
        XCTAssertEqual(response.errorCode, "undecodable_clip")
        XCTAssertEqual((response.json["error"] as? [String: Any])?["message"] as? String,
                       "the clip could not be decoded: the decoder failed on this clip (its process was killed by SIGKILL)")
        XCTAssertNotNil(response.headers["x-request-id"])
        XCTAssertEqual(try daemon.metric("avmae_decode_worker_failures_total{reason=\"killed\"}"), 1)
        // Replaced, and serving.
        let after = workers(of: daemon)
        XCTAssertEqual(after.count, 1)
        XCTAssertFalse(after.contains(victim))
        XCTAssertEqual(try classify(daemon, Fixture.tone, "top_k=1").status, 200)
        XCTAssertEqual(try classify(daemon, Fixture.clip, "top_k=1").status, 200)
    }

    private func classify(_ daemon: RunningDaemon, _ fixture: URL, _ query: String) throws -> Curl.Response {
        try Curl.run(port: daemon.port, path: "/v1/classify?\(query)",
                     headers: ["Content-Type": "application/octet-stream"], bodyFile: fixture)
    }

    /// The daemon's decode workers: its children running `decode-worker`.
    private func workers(of daemon: RunningDaemon) -> [Int32] {
        let parent = daemon.process.processIdentifier
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }.filter {
            String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\($0)/cmdline"))) ?? Data(), as: UTF8.self)
                .contains("decode-worker")
        }
    }

    /// A worker is mid-clip exactly while its clip memory (descriptor 4) has file offset 1: the daemon sets it
    /// before handing over a clip and clears it when the clip is done (/proc/PID/fdinfo/4, "pos:").
    private func isBusy(_ pid: Int32) -> Bool {
        let info = (try? String(contentsOfFile: "/proc/\(pid)/fdinfo/4", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").contains { $0.hasPrefix("pos:") && $0.dropFirst(4).trimmingCharacters(in: .whitespaces) == "1" }
    }
}
