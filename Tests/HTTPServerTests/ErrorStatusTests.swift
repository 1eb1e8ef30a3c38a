import XCTest

/// Every documented error status, with its JSON body and headers.
final class ErrorStatusTests: SharedDaemonTestCase {
    private static let maxBody = 1_000_000

    override class func makeDaemon() throws -> RunningDaemon {
        try RunningDaemon(settings: ["max_body_bytes": "\(maxBody)", "max_duration_seconds": "20"])
    }

    private func assertError(_ response: Curl.Response, _ status: Int, _ code: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, String(decoding: response.body, as: UTF8.self), file: file, line: line)
        XCTAssertEqual(response.errorCode, code, file: file, line: line)
        XCTAssertEqual(response.headers["content-type"], "application/json", file: file, line: line)
        XCTAssertNotNil(response.headers["x-request-id"], file: file, line: line)
        let message = (response.json["error"] as? [String: Any])?["message"] as? String
        XCTAssertFalse(message?.isEmpty ?? true, file: file, line: line)
    }

    private func classify(_ query: String = "", type: String = "audio/wav", body: URL = Fixture.tone) throws -> Curl.Response {
        try Curl.run(port: port, path: "/v1/classify\(query)", headers: ["Content-Type": type], bodyFile: body)
    }

    func test400ForBadParametersAndBodies() throws {
        assertError(try classify("?top_k=0"), 400, "invalid_parameter")
        assertError(try classify("?top_k=abc"), 400, "invalid_parameter")
        assertError(try classify("?crops=2"), 400, "invalid_parameter")
        assertError(try classify("?modality=smell"), 400, "invalid_parameter")
        assertError(try classify("?threshold=2"), 400, "invalid_parameter")
        assertError(try classify("?bogus=1"), 400, "invalid_parameter")
        assertError(try Curl.run(port: port, path: "/v1/embed?encoding=hex", headers: ["Content-Type": "audio/wav"],
                                 bodyFile: Fixture.tone), 400, "invalid_parameter")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID()).wav")
        try Data().write(to: empty)
        assertError(try classify(body: empty), 400, "bad_request")
        // A form without a part named "file".
        let other = try Curl.run(port: port, path: "/v1/classify",
                                 headers: ["Content-Type": "multipart/form-data; boundary=XyZ"],
                                 bodyFile: try multipart(name: "clip"))
        assertError(other, 400, "bad_request")
        let noBoundary = try classify(type: "multipart/form-data")
        assertError(noBoundary, 400, "bad_request")
        XCTAssertTrue(String(decoding: noBoundary.body, as: UTF8.self).contains("no boundary parameter"), "a readable reason")
    }

    private func multipart(name: String) throws -> URL {
        var body = Data("--XyZ\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"t.wav\"\r\n".utf8)
        body += Data("Content-Type: audio/wav\r\n\r\n".utf8) + (try Data(contentsOf: Fixture.tone))
        body += Data("\r\n--XyZ--\r\n".utf8)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("form-\(UUID()).bin")
        try body.write(to: url)
        return url
    }

    func testHandWrittenMultipartWithAFilePartIsAccepted() throws {
        let response = try Curl.run(port: port, path: "/v1/classify",
                                    headers: ["Content-Type": "multipart/form-data; boundary=\"XyZ\""],
                                    bodyFile: try multipart(name: "file"))
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
    }

    func test404And405() throws {
        assertError(try Curl.run(port: port, path: "/v9/nothing"), 404, "not_found")  // /v2 is the OIP, with its own error shape
        let get = try Curl.run(port: port, path: "/v1/classify")
        assertError(get, 405, "method_not_allowed")
        XCTAssertEqual(get.headers["allow"], "POST")
        let delete = try Curl.run(port: port, path: "/healthz", method: "DELETE")
        assertError(delete, 405, "method_not_allowed")
        XCTAssertEqual(delete.headers["allow"], "GET, HEAD")
    }

    func test411WithoutALength() throws {
        assertError(try Curl.run(port: port, path: "/v1/classify", method: "POST",
                                 headers: ["Content-Type": "audio/wav"]), 411, "length_required")
    }

    func test413ForDeclaredAndForStreamedOversizeBodies() throws {
        let big = try Fixture.garbage(Self.maxBody + 1)
        let refused = try classify(body: big)
        assertError(refused, 413, "payload_too_large")
        XCTAssertTrue(message(refused).contains("?stream=true"), "a /v1 upload over max_body_bytes is told it can stream")
        // Chunked: no length up front, so the cap is enforced while the body streams in.
        assertError(try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                 bodyFile: big, chunked: true), 413, "payload_too_large")
        // A chunked body under the cap is fine.
        let small = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                 bodyFile: Fixture.tone, chunked: true)
        XCTAssertEqual(small.status, 200)
    }

    /// Longer than max_duration_seconds: 422, with the way out (streaming); a stream of it is answered.
    func test422ForAClipTooLongPointsToStreaming() throws {
        let refused = try classify(type: "audio/flac", body: Fixture.long)
        assertError(refused, 422, "clip_too_long")
        XCTAssertTrue(message(refused).contains("?stream=true"), message(refused))
        XCTAssertEqual(try classify("?stream=true", type: "audio/flac", body: Fixture.long).status, 200)
    }

    private func message(_ response: Curl.Response) -> String {
        (response.json["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    func test415ForOtherContentTypes() throws {
        assertError(try classify(type: "text/plain"), 415, "unsupported_media_type")
        assertError(try classify(type: "application/json"), 415, "unsupported_media_type")
    }

    func test422ForUndecodableClipsAndMissingModalities() throws {
        assertError(try classify(body: try Fixture.garbage(5000)), 422, "undecodable_clip")
        assertError(try classify("?modality=video"), 422, "modality_unavailable")
        assertError(try classify("?modality=audiovisual"), 422, "modality_unavailable")
        assertError(try Curl.run(port: port, path: "/v1/embed?modality=video", headers: ["Content-Type": "audio/wav"],
                                 bodyFile: Fixture.tone), 422, "modality_unavailable")
        let tiny = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "video/x-matroska"],
                                bodyFile: Fixture.tiny)
        assertError(tiny, 422, "modality_unavailable")
        XCTAssertTrue(String(decoding: tiny.body, as: UTF8.self).contains("the video is 1x1"), "the reason reaches the client")
    }

    func testTheServerStillAnswersAfterAllThat() throws {
        XCTAssertEqual(try classify().status, 200)
        XCTAssertEqual(try daemon.metric("avmae_requests_total{route=\"/v1/classify\",code=\"500\"}"), 0)
    }
}
