import AVMAE
import Foundation
import XCTest

/// The per-request deadline (`timeout_ms`, capped by request_timeout_seconds) covers the whole request, and a
/// client that leaves while its request waits costs no model time. Real daemon, real sockets.
final class DeadlineTests: XCTestCase {
    private func classify(_ daemon: RunningDaemon, query: String = "", file: URL = Fixture.tone,
                          type: String = "audio/wav") throws -> Curl {
        try Curl(port: daemon.port, path: "/v1/classify\(query)", headers: ["Content-Type": type], bodyFile: file)
    }

    /// Polls /metrics until `series` reaches `value`; fails after `timeout` seconds.
    private func wait(for series: String, toReach value: Double, on daemon: RunningDaemon, timeout: Double = 120) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while try daemon.metric(series) < value {
            guard Date() < deadline else { return XCTFail("\(series) did not reach \(value)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    func testATimeoutThatPassesInTheQueueIsAnsweredAtTheDeadline() throws {
        // Batches wait 10 s to fill; the request's own 300 ms deadline passes long before.
        let daemon = try RunningDaemon(settings: ["max_batch": "64", "max_delay_ms": "10000"])
        let started = Date()
        let response = try classify(daemon, query: "?timeout_ms=300").finish()
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "answered at the deadline, not when the batch ran")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.errorCode, "deadline_exceeded")
        XCTAssertEqual(response.headers["retry-after"], "1")
        XCTAssertEqual(try daemon.metric("avmae_rejected_total{reason=\"deadline\"}"), 1)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_count"), 0, "its row never reached the model")
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testATimeoutThatPassesDuringDecodeNeverReachesTheModel() throws {
        // Batches start at once (no batching delay), so a row that got past decoding would run; 1 ms is over
        // before the decode worker has the clip.
        let daemon = try RunningDaemon(settings: ["max_batch": "1", "max_delay_ms": "0"])
        let batches = try daemon.metric("avmae_batch_size_count")
        for _ in 0..<3 {
            let response = try classify(daemon, query: "?timeout_ms=1", file: Fixture.clip, type: "video/mp4").finish()
            XCTAssertEqual(response.status, 503)
            XCTAssertEqual(response.errorCode, "deadline_exceeded")
        }
        XCTAssertEqual(try daemon.metric("avmae_rejected_total{reason=\"deadline\"}"), 3)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_count"), batches)
        // The same clip with time to spare is classified: the server is fine.
        XCTAssertEqual(try classify(daemon, query: "?timeout_ms=60000", file: Fixture.clip, type: "video/mp4").finish().status, 200)
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testTheServerSettingCapsTheClientsTimeout() throws {
        let daemon = try RunningDaemon(settings: ["max_batch": "64", "max_delay_ms": "10000",
                                                  "request_timeout_seconds": "0.3"])
        let started = Date()
        let response = try classify(daemon, query: "?timeout_ms=600000").finish()
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.errorCode, "deadline_exceeded")
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testAnInvalidTimeoutIs400() throws {
        let daemon = try RunningDaemon()
        for value in ["0", "-5", "soon", "1.5"] {
            for path in ["/v1/classify", "/v1/embed"] {
                let response = try Curl.run(port: daemon.port, path: "\(path)?timeout_ms=\(value)",
                                            headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
                XCTAssertEqual(response.status, 400, "\(path) timeout_ms=\(value)")
                XCTAssertEqual(response.errorCode, "invalid_parameter")
            }
        }
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testAClientThatLeavesWhileQueuedBehindALongBatchCostsNoModelTime() throws {
        // A wider model on a four-crop video: one long batch of 4 audio+video rows (seconds). Audio rows cannot
        // join it (one input kind per batch), so the audio request waits behind it; its client then closes the
        // socket. The generous deadline keeps admission by cost from refusing the audio request up front.
        let daemon = try RunningDaemon(settings: ["max_batch": "8", "max_delay_ms": "0", "request_timeout_seconds": "600",
                                                  "max_batch_seconds": "1000"],
                                       config: DemoBundle.config(layers: 4, width: 256, heads: 4, mlp: 512),
                                       readyTimeout: 300)
        let batches = try daemon.metric("avmae_batch_size_count")
        let rows = try daemon.metric("avmae_batch_size_sum")
        let long = try classify(daemon, query: "?crops=4", file: Fixture.clip, type: "video/mp4")
        try wait(for: "avmae_batch_size_count", toReach: batches + 1, on: daemon)
        let leaving = try classify(daemon)
        try wait(for: "avmae_queue_depth", toReach: 1, on: daemon)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_count"), batches + 1, "the long batch is still running")
        leaving.process.terminate()
        leaving.process.waitUntilExit()
        try wait(for: "avmae_client_disconnects_total{stage=\"queue\"}", toReach: 1, on: daemon)
        XCTAssertEqual(try daemon.metric("avmae_queue_depth"), 0, "its row left the queue at once")

        XCTAssertEqual(try long.finish().status, 200)
        // Only the video batch ran: 4 rows in 1 model call; the audio row was never computed.
        XCTAssertEqual(try daemon.metric("avmae_batch_size_count"), batches + 1)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_sum"), rows + 4)
        XCTAssertEqual(try daemon.metric("avmae_requests_total{route=\"/v1/classify\",code=\"499\"}"), 1)
        XCTAssertEqual(try daemon.metric("avmae_inflight_requests"), 1, "only the /metrics request itself")
        // The server is healthy and serves the next client.
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/readyz").status, 200)
        XCTAssertEqual(try classify(daemon).finish().status, 200)
        XCTAssertEqual(daemon.terminateAndWait(), 0)
        XCTAssertTrue(daemon.log.contains("drained=true"), daemon.log)
    }

    /// The same for /v2 raw tensors, which skip the decoder and are queued at once: a WAVEFORM infer whose client
    /// leaves while it waits behind the long batch is withdrawn and never computed; a timeout in its
    /// `parameters` is a whole-request deadline there too.
    func testAV2TensorRequestWhoseClientLeavesCostsNoModelTime() throws {
        let config = DemoBundle.config(layers: 4, width: 256, heads: 4, mlp: 512)
        let daemon = try RunningDaemon(settings: ["max_batch": "8", "max_delay_ms": "0", "request_timeout_seconds": "600",
                                                  "max_batch_seconds": "1000"],
                                       config: config, readyTimeout: 300)
        func infer(timeoutMicroseconds: Int? = nil) throws -> Curl {
            var request = V2Request()
            request.floats("WAVEFORM", shape: [1, config.windowSamples],
                           (0..<config.windowSamples).map { Float(sin(Double($0) * 0.05)) * 0.3 })
            if let timeoutMicroseconds { request.parameters["timeout"] = timeoutMicroseconds }
            let (file, headerLength) = try request.write()
            addTeardownBlock { try? FileManager.default.removeItem(at: file) }
            return try Curl(port: daemon.port, path: "/v2/models/\(config.name)/infer",
                            headers: ["Inference-Header-Content-Length": "\(headerLength)",
                                      "Content-Type": "application/octet-stream"],
                            bodyFile: file)
        }
        let batches = try daemon.metric("avmae_batch_size_count")
        let rows = try daemon.metric("avmae_batch_size_sum")
        let long = try classify(daemon, query: "?crops=4", file: Fixture.clip, type: "video/mp4")
        try wait(for: "avmae_batch_size_count", toReach: batches + 1, on: daemon)
        let leaving = try infer()
        try wait(for: "avmae_queue_depth", toReach: 1, on: daemon)
        leaving.process.terminate()
        leaving.process.waitUntilExit()
        try wait(for: "avmae_client_disconnects_total{stage=\"queue\"}", toReach: 1, on: daemon)
        XCTAssertEqual(try daemon.metric("avmae_queue_depth"), 0, "its row left the queue at once")
        // A 1 ms deadline passes behind the long batch: 503 deadline_exceeded, and that row is not computed either.
        let late = try infer(timeoutMicroseconds: 1000).finish()
        XCTAssertEqual(late.status, 503, String(decoding: late.body, as: UTF8.self))

        XCTAssertEqual(try long.finish().status, 200)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_count"), batches + 1)
        XCTAssertEqual(try daemon.metric("avmae_batch_size_sum"), rows + 4)
        let answered = try infer().finish()
        XCTAssertEqual(answered.status, 200, String(decoding: answered.body, as: UTF8.self))
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }
}
