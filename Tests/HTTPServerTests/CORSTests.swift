import Foundation
import XCTest

/// `cors_allowed_origins` on a real daemon that also wants API keys: a browser's preflight is answered before
/// authentication, and every answer to an allowed origin says so.
final class CORSTests: SharedDaemonTestCase {
    private static let key = "cors-key-0123456789abcdef"
    private static let allowed = "https://app.example.com"

    override class func makeDaemon() throws -> RunningDaemon {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try "\(key)\n".write(to: file, atomically: true, encoding: .utf8)
        return try RunningDaemon(settings: ["api_key_file": file.path,
                                            "cors_allowed_origins": "\(allowed), http://localhost:3000"])
    }

    private func preflight(origin: String, method: String = "POST", path: String = "/v1/classify") throws -> Curl.Response {
        try Curl.run(port: port, path: path, method: "OPTIONS", headers: [
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        ])
    }

    func testPreflightIsAnsweredBeforeAuthentication() throws {
        let response = try preflight(origin: Self.allowed)
        XCTAssertEqual(response.status, 204, String(decoding: response.body, as: UTF8.self))
        XCTAssertEqual(response.headers["access-control-allow-origin"], Self.allowed)
        XCTAssertEqual(response.headers["access-control-allow-methods"], "POST")
        let allowedHeaders = response.headers["access-control-allow-headers"]?.lowercased() ?? ""
        XCTAssertTrue(allowedHeaders.contains("authorization") && allowedHeaders.contains("content-type"), allowedHeaders)
        XCTAssertEqual(response.headers["access-control-max-age"], "600")
        XCTAssertTrue(response.headers["vary"]?.contains("Origin") ?? false, "\(response.headers)")
        XCTAssertNotNil(response.headers["x-request-id"])
        XCTAssertEqual(response.body.count, 0)
    }

    func testPreflightForAGetRouteAllowsItsMethods() throws {
        let response = try preflight(origin: "http://localhost:3000", method: "GET", path: "/v1/models")
        XCTAssertEqual(response.status, 204)
        XCTAssertEqual(response.headers["access-control-allow-origin"], "http://localhost:3000")
        XCTAssertEqual(response.headers["access-control-allow-methods"], "GET, HEAD")
    }

    func testAnotherOriginIsNotAllowed() throws {
        let refused = try preflight(origin: "https://evil.example.com")
        XCTAssertEqual(refused.status, 204)
        XCTAssertNil(refused.headers["access-control-allow-origin"])
        XCTAssertNil(refused.headers["access-control-allow-methods"])

        let answer = try Curl.run(port: port, path: "/healthz", headers: ["Origin": "https://evil.example.com"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertNil(answer.headers["access-control-allow-origin"])
        XCTAssertEqual(answer.headers["vary"], "Origin", "the answer depends on Origin, so caches must key on it")
    }

    func testAMethodTheRouteDoesNotTakeIsNotAllowed() throws {
        let response = try preflight(origin: Self.allowed, method: "DELETE")
        XCTAssertEqual(response.status, 204)
        XCTAssertNil(response.headers["access-control-allow-methods"])
    }

    func testAnswersToAnAllowedOriginCarryAllowOriginAndExposeHeaders() throws {
        let classified = try Curl.run(port: port, path: "/v1/classify", headers: [
            "Origin": Self.allowed, "Authorization": "Bearer \(Self.key)", "Content-Type": "audio/wav",
        ], bodyFile: Fixture.tone)
        // A 401 must be readable by the page too, or it cannot tell a bad key from a network error.
        let unauthorized = try Curl.run(port: port, path: "/v1/models", headers: ["Origin": Self.allowed])
        XCTAssertEqual(classified.status, 200, String(decoding: classified.body, as: UTF8.self))
        XCTAssertEqual(unauthorized.status, 401)
        for response in [classified, unauthorized] {
            XCTAssertEqual(response.headers["access-control-allow-origin"], Self.allowed)
            XCTAssertEqual(response.headers["vary"], "Origin")
            let exposed = response.headers["access-control-expose-headers"] ?? ""
            XCTAssertTrue(exposed.contains("X-Request-Id") && exposed.contains("Retry-After"), exposed)
        }
    }

    func testOptionsWithoutPreflightHeadersIsStillRefused() throws {
        // Not a CORS preflight, so it is an ordinary request: authentication first, then the route's methods.
        let response = try Curl.run(port: port, path: "/healthz", method: "OPTIONS")
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.headers["allow"], "GET, HEAD")
    }
}

/// `cors_allowed_origins=*` answers any origin with `*`; a server without the setting sends no CORS headers.
final class CORSWildcardAndOffTests: XCTestCase {
    func testWildcardAllowsAnyOrigin() throws {
        let daemon = try RunningDaemon(settings: ["cors_allowed_origins": "*"])
        let preflight = try Curl.run(port: daemon.port, path: "/v1/embed", method: "OPTIONS", headers: [
            "Origin": "https://anywhere.example", "Access-Control-Request-Method": "POST",
        ])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertEqual(preflight.headers["access-control-allow-origin"], "*")
        let embedded = try Curl.run(port: daemon.port, path: "/v1/embed", headers: [
            "Origin": "https://anywhere.example", "Content-Type": "audio/wav",
        ], bodyFile: Fixture.tone)
        XCTAssertEqual(embedded.status, 200)
        XCTAssertEqual(embedded.headers["access-control-allow-origin"], "*")
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }

    func testNoSettingNoCORS() throws {
        let daemon = try RunningDaemon()
        let preflight = try Curl.run(port: daemon.port, path: "/v1/classify", method: "OPTIONS", headers: [
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        ])
        XCTAssertEqual(preflight.status, 405)
        let answer = try Curl.run(port: daemon.port, path: "/healthz", headers: ["Origin": "https://app.example.com"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertNil(answer.headers["access-control-allow-origin"])
        XCTAssertNil(answer.headers["vary"])
        XCTAssertEqual(daemon.terminateAndWait(), 0)
    }
}
