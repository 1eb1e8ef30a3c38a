import AVMAE
import XCTest

/// /healthz, /readyz, /v1/models and /metrics on a real daemon.
final class StatusEndpointTests: SharedDaemonTestCase {
    func testHealthAndReadiness() throws {
        let health = try Curl.run(port: port, path: "/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")
        let ready = try Curl.run(port: port, path: "/readyz")
        XCTAssertEqual(ready.status, 200)
        XCTAssertEqual(ready.json["status"] as? String, "ready")
    }

    func testModelsDescribesTheLoadedBundle() throws {
        let model = try Model(bundle: daemon.bundle)
        let response = try Curl.run(port: port, path: "/v1/models")
        XCTAssertEqual(response.status, 200)
        let entry = try XCTUnwrap((response.json["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(entry["name"] as? String, "avmae-demo")
        XCTAssertEqual(entry["kind"] as? String, "finetuned")
        XCTAssertEqual(entry["modalities"] as? [String], ["audio", "video"])
        XCTAssertEqual(entry["label_set"] as? String, "audioset")
        XCTAssertEqual(entry["classes"] as? Int, 527)
        XCTAssertEqual(entry["clip_seconds"] as? Double, 10)
        XCTAssertEqual(entry["frames"] as? Int, 32)
        XCTAssertEqual(entry["parameters"] as? Int, model.parameterCount)
    }

    func testMetricsExposesTheDocumentedSeries() throws {
        _ = try Curl.run(port: port, path: "/healthz")
        _ = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone)
        let response = try Curl.run(port: port, path: "/metrics")
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.headers["content-type"]?.hasPrefix("text/plain") ?? false)
        let text = String(decoding: response.body, as: UTF8.self)
        for series in ["avmae_model_ready{model=\"avmae-demo\"} 1.0", "avmae_requests_total{route=\"/healthz\",code=\"200\"}",
                       "avmae_request_duration_seconds_bucket{route=\"/healthz\"", "avmae_queue_depth",
                       "avmae_inflight_requests", "avmae_batch_size_bucket", "avmae_request_body_bytes_bucket", "avmae_inference_duration_seconds_count",
                       "avmae_model_info{name=\"avmae-demo\"", "avmae_compute_info{isa=", "process_resident_memory_bytes",
                       "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"] {
            XCTAssertTrue(text.contains(series), "missing \(series) in /metrics")
        }
        XCTAssertGreaterThan(try daemon.metric("process_resident_memory_bytes"), 1_000_000)
        XCTAssertGreaterThan(try daemon.metric("process_start_time_seconds"), 1_600_000_000)
    }

    func testRequestIdIsEchoedOrGenerated() throws {
        let echoed = try Curl.run(port: port, path: "/healthz", headers: ["X-Request-Id": "client-abc-123"])
        XCTAssertEqual(echoed.headers["x-request-id"], "client-abc-123")
        let generated = try Curl.run(port: port, path: "/healthz")
        XCTAssertEqual(generated.headers["x-request-id"]?.count, 32)
        let missing = try Curl.run(port: port, path: "/nope", headers: ["X-Request-Id": "r-404"])
        XCTAssertEqual(missing.headers["x-request-id"], "r-404")
    }

    func testReadinessFollowsTheLifecycleThroughWarmUpAndShutdown() throws {
        // A wider model warms up for a second or more: long enough to see "warming" and to stop during it.
        let daemon = try RunningDaemon(config: DemoBundle.config(layers: 4, width: 256, heads: 4, mlp: 512),
                                       waitForReady: false)
        var reasons: [String] = []
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            let ready = try Curl.run(port: daemon.port, path: "/readyz")
            XCTAssertEqual(try Curl.run(port: daemon.port, path: "/healthz").status, 200, "liveness never waits")
            if let reason = ready.json["reason"] as? String, reasons.last != reason { reasons.append(reason) }
            if reason(ready) == "warming" { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(reasons.last, "warming", "\(reasons)")
        let models = try Curl.run(port: daemon.port, path: "/v1/models").json["models"] as? [[String: Any]]
        XCTAssertEqual(models?.first?["state"] as? String, "loading", "\(models ?? [])")
        // SIGTERM mid-warm-up: the warm-up batch finishes, then a clean exit.
        XCTAssertEqual(daemon.terminateAndWait(), 0, daemon.log)
        XCTAssertTrue(daemon.log.contains("drained=true"), daemon.log)
    }

    private func reason(_ response: Curl.Response) -> String? { response.json["reason"] as? String }
}
