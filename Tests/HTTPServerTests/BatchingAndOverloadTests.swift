import AVMAE
import XCTest

/// Concurrency through the whole server: batching under load, queue overflow, deadlines, and SIGTERM drain.
final class BatchingAndOverloadTests: XCTestCase {
    private func concurrent(_ count: Int, port: Int, path: String, type: String, file: URL) throws -> [Curl.Response] {
        let clients = try (0..<count).map { i in
            try Curl(port: port, path: path, headers: ["Content-Type": type, "X-Request-Id": "client-\(i)"],
                     bodyFile: file)
        }
        return try clients.map { try $0.finish() }
    }

    func test32ConcurrentClientsAreAllAnsweredCorrectlyAndBatched() throws {
        // No cost cap on batches (max_batch_seconds): on a loaded machine the demo model's rows can cost enough
        // for the 1 s default to cut batches short, and this test is about max_batch and max_delay_ms.
        let daemon = try RunningDaemon(settings: ["max_batch": "8", "max_delay_ms": "50", "max_queue": "64",
                                                  "max_batch_seconds": "1000"])
        let reference = try Curl.run(port: daemon.port, path: "/v1/classify?top_k=3",
                                     headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
        let batchesBefore = try daemon.metric("avmae_batch_size_count")
        let rowsBefore = try daemon.metric("avmae_batch_size_sum")

        let responses = try concurrent(32, port: daemon.port, path: "/v1/classify?top_k=3", type: "audio/wav",
                                       file: Fixture.tone)
        for (i, response) in responses.enumerated() {
            XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
            XCTAssertEqual(response.headers["x-request-id"], "client-\(i)")
            XCTAssertEqual(response.json["request_id"] as? String, "client-\(i)")
            let labels = (response.json["labels"] as? [[String: Any]])?.compactMap { $0["index"] as? Int }
            XCTAssertEqual(labels, (reference.json["labels"] as? [[String: Any]])?.compactMap { $0["index"] as? Int })
        }
        let batches = try daemon.metric("avmae_batch_size_count") - batchesBefore
        let rows = try daemon.metric("avmae_batch_size_sum") - rowsBefore
        XCTAssertEqual(rows, 32, "every request is one row")
        XCTAssertLessThan(batches, 32, "some requests shared a model call")
        XCTAssertGreaterThanOrEqual(batches, 4, "no batch is larger than max_batch=8")
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testQueueOverflowAnswers503WithRetryAfter() throws {
        // One row may wait; a four-crop video clip is four rows, so while one runs every other one is refused.
        let daemon = try RunningDaemon(settings: ["max_batch": "1", "max_delay_ms": "0", "max_queue": "1"])
        let responses = try concurrent(12, port: daemon.port, path: "/v1/classify?crops=4", type: "video/mp4",
                                       file: Fixture.clip)
        let refused = responses.filter { $0.status == 503 }
        XCTAssertFalse(refused.isEmpty, "statuses: \(responses.map(\.status))")
        XCTAssertTrue(responses.allSatisfy { $0.status == 200 || $0.status == 503 }, "\(responses.map(\.status))")
        XCTAssertGreaterThan(responses.filter { $0.status == 200 }.count, 0)
        for response in refused {
            XCTAssertEqual(response.errorCode, "overloaded")
            // The queue's estimated work at the cost per row measured at warm-up, rounded up: at least 1 s.
            let retryAfter = Int(response.headers["retry-after"] ?? "")
            XCTAssertTrue((1...120).contains(retryAfter ?? 0), "Retry-After \(response.headers["retry-after"] ?? "none")")
        }
        XCTAssertEqual(try daemon.metric("avmae_rejected_total{reason=\"queue_full\"}"), Double(refused.count))
        XCTAssertEqual(try daemon.metric("avmae_queue_estimated_seconds"), 0, "idle again: no work left")
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testARequestPastItsDeadlineInTheQueueGets503() throws {
        // Batches wait up to 10 s to fill, far past the 0.3 s deadline, so the request expires in the queue.
        let daemon = try RunningDaemon(settings: ["max_batch": "64", "max_delay_ms": "10000", "max_batch_seconds": "1000",
                                                  "request_timeout_seconds": "0.3"])
        let response = try Curl.run(port: daemon.port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                    bodyFile: Fixture.tone)
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.errorCode, "deadline_exceeded")
        XCTAssertEqual(response.headers["retry-after"], "1")
        XCTAssertEqual(try daemon.metric("avmae_rejected_total{reason=\"deadline\"}"), 1)
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testAWaitingRequestHoldsNoHTTPThread() throws {
        // One MHD thread; the classify request parks in the batcher for up to 3 s. Its connection is suspended,
        // so the same thread keeps answering other clients meanwhile.
        let daemon = try RunningDaemon(settings: ["http_threads": "1", "max_batch": "64", "max_delay_ms": "3000",
                                                  "max_batch_seconds": "1000"])
        let parked = try Curl(port: daemon.port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                              bodyFile: Fixture.tone)
        let deadline = Date(timeIntervalSinceNow: 30)
        while try daemon.metric("avmae_queue_depth") < 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let started = Date()
        for _ in 0..<5 { XCTAssertEqual(try Curl.run(port: daemon.port, path: "/healthz").status, 200) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
        XCTAssertTrue(parked.process.isRunning, "the classify request is still waiting for its batch")
        XCTAssertEqual(try parked.finish().status, 200)
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testSIGTERMFinishesInFlightRequestsThenExitsZero() throws {
        // Requests park in the batcher (10 s batching delay); SIGTERM must flush and answer them, not drop them.
        let daemon = try RunningDaemon(settings: ["max_batch": "64", "max_delay_ms": "10000", "max_batch_seconds": "1000"])
        let clients = try (0..<6).map { _ in
            try Curl(port: daemon.port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                     bodyFile: Fixture.tone)
        }
        let deadline = Date(timeIntervalSinceNow: 60)
        while try daemon.metric("avmae_queue_depth") < 6 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(try daemon.metric("avmae_queue_depth"), 6)
        let started = Date()
        XCTAssertEqual(daemon.terminateAndWait(), 0, daemon.log)
        XCTAssertLessThan(Date().timeIntervalSince(started), 9, "drain flushes the queue instead of waiting for a batch")
        for client in clients {
            let response = try client.finish()
            XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        }
        XCTAssertTrue(daemon.log.contains("drained=true"), daemon.log)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/healthz").status, 0, "nothing listens after exit")
    }

    func testDrainTimeoutAnswersWhatIsStillRunningWith503AndExitsZero() throws {
        // A wider model on a four-crop video takes far longer than the 0.1 s drain timeout.
        let daemon = try RunningDaemon(settings: ["drain_timeout_seconds": "0.1"],
                                       config: DemoBundle.config(layers: 4, width: 256, heads: 4, mlp: 512))
        let slow = try Curl(port: daemon.port, path: "/v1/classify?crops=4", headers: ["Content-Type": "video/mp4"],
                            bodyFile: Fixture.clip)
        let deadline = Date(timeIntervalSinceNow: 30)
        while try daemon.metric("avmae_batch_size_count") < 1 && Date() < deadline {  // the batch has started
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(daemon.terminateAndWait(), 0, daemon.log)
        let response = try slow.finish()
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.errorCode, "not_ready")
        XCTAssertTrue(daemon.log.contains("drain timeout"), daemon.log)
    }
}
