import Foundation
import HTTPServer
import XCTest

/// --api-key-file on a real daemon: the model routes need `Authorization: Bearer <key>`, the probes do not.
final class AuthenticationTests: SharedDaemonTestCase {
    private static let keys = ["first-key-0123456789abcdef", "second-key-fedcba9876543210"]

    override class func makeDaemon() throws -> RunningDaemon {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try "# rotated 2026-11\n\n\(keys[0])\n  \(keys[1])  \n".write(to: file, atomically: true, encoding: .utf8)
        return try RunningDaemon(settings: ["api_key_file": file.path])
    }

    private func classify(_ headers: [String: String]) throws -> Curl.Response {
        try Curl.run(port: port, path: "/v1/classify", headers: headers.merging(["Content-Type": "audio/wav"]) { $1 },
                     bodyFile: Fixture.tone)
    }

    func testNoKeyIs401WithChallenge() throws {
        for response in [try classify([:]), try Curl.run(port: port, path: "/v1/models")] {
            XCTAssertEqual(response.status, 401)
            XCTAssertEqual(response.headers["www-authenticate"], "Bearer realm=\"avmae-serve\"")
            XCTAssertEqual(response.errorCode, "unauthorized")
            XCTAssertNotNil(response.headers["x-request-id"])
        }
    }

    func testWrongKeyIs401() throws {
        for header in ["Bearer wrong", "Bearer \(Self.keys[0])x", "Bearer \(Self.keys[0].dropLast())",
                       "Basic \(Self.keys[0])", Self.keys[0]] {
            let response = try classify(["Authorization": header])
            XCTAssertEqual(response.status, 401, header)
            XCTAssertEqual(response.errorCode, "unauthorized", header)
        }
    }

    func testEitherKeyIs200() throws {
        for key in Self.keys {
            let response = try classify(["Authorization": "Bearer \(key)"])
            XCTAssertEqual(response.status, 200, key)
            XCTAssertFalse((response.json["labels"] as? [Any] ?? []).isEmpty)
        }
        XCTAssertEqual(try Curl.run(port: port, path: "/v1/models", headers: ["Authorization": "bearer \(Self.keys[1])"]).status, 200)
    }

    /// The protocol's health routes too: KServe and Kubernetes probe them.
    func testProbesAndMetricsStayOpen() throws {
        for path in ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"] {
            XCTAssertEqual(try Curl.run(port: port, path: path).status, 200, path)
        }
        // The protocol's other routes are the model's, and want a key.
        for path in ["/v2", "/v2/models/avmae-demo", "/v2/models/avmae-demo/ready"] {
            XCTAssertEqual(try Curl.run(port: port, path: path).status, 401, path)
        }
        let metrics = String(decoding: try Curl.run(port: port, path: "/metrics").body, as: UTF8.self)
        XCTAssertTrue(metrics.contains("code=\"401\""), "401s are not counted in avmae_requests_total")
    }

    /// The key file parser, without a daemon.
    func testKeyFileRules() throws {
        let keys = APIKeys(keys: ["abc"])
        XCTAssertTrue(keys.accepts(authorization: "Bearer abc"))
        XCTAssertFalse(keys.accepts(authorization: "Bearer ab"))
        XCTAssertFalse(keys.accepts(authorization: "Bearer abcd"))
        XCTAssertFalse(keys.accepts(authorization: "Bearer "))
        XCTAssertFalse(keys.accepts(authorization: nil))
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try "# only a comment\n\n".write(to: empty, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try APIKeys(file: empty.path)) {
            XCTAssertEqual($0 as? APIKeys.LoadError, .empty(path: empty.path))
        }
        XCTAssertThrowsError(try APIKeys(file: "/nonexistent/keys")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/keys"))
        }
    }
}
