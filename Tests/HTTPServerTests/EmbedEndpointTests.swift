import XCTest

/// POST /v1/embed: pooled vectors, token matrices, JSON and base64.
final class EmbedEndpointTests: SharedDaemonTestCase {
    private func floats(base64 text: String) throws -> [Float] {
        let data = try XCTUnwrap(Data(base64Encoded: text))
        return stride(from: 0, to: data.count, by: 4).map { offset in
            Float(bitPattern: data[offset..<(offset + 4)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) })
        }
    }

    func testPooledEmbeddingAsJSONAndBase64AreTheSameNumbers() throws {
        let json = try Curl.run(port: port, path: "/v1/embed", headers: ["Content-Type": "audio/wav"],
                                bodyFile: Fixture.tone)
        XCTAssertEqual(json.status, 200, String(decoding: json.body, as: UTF8.self))
        XCTAssertEqual(json.json["dim"] as? Int, 64)
        XCTAssertEqual(json.json["modalities"] as? [String], ["audio"])
        XCTAssertNil(json.json["windows"])
        let vector = try XCTUnwrap((json.json["embeddings"] as? [String: Any])?["audio"] as? [Double])
        XCTAssertEqual(vector.count, 64)

        let base64 = try Curl.run(port: port, path: "/v1/embed?encoding=base64", headers: ["Content-Type": "audio/wav"],
                                  bodyFile: Fixture.tone)
        XCTAssertEqual(base64.json["encoding"] as? String, "base64")
        let decoded = try floats(base64: try XCTUnwrap((base64.json["embeddings"] as? [String: Any])?["audio"] as? String))
        XCTAssertEqual(decoded.count, 64)
        for (a, b) in zip(decoded, vector) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }

    func testTokensAreReturnedPerWindowAndPoolToTheEmbedding() throws {
        let response = try Curl.run(port: port, path: "/v1/embed?tokens=true", headers: ["Content-Type": "audio/wav"],
                                    bodyFile: Fixture.tone)
        XCTAssertEqual(response.status, 200)
        let window = try XCTUnwrap((response.json["windows"] as? [[String: Any]])?.first)
        let tokens = try XCTUnwrap((window["tokens"] as? [String: Any])?["audio"] as? [String: Any])
        let shape = try XCTUnwrap(tokens["shape"] as? [Int])
        XCTAssertEqual(shape.count, 2)
        XCTAssertEqual(shape[1], 64)
        let data = try XCTUnwrap(tokens["data"] as? [Double])
        XCTAssertEqual(data.count, shape[0] * shape[1])
        // The pooled embedding is the mean of the tokens.
        let pooled = try XCTUnwrap((response.json["embeddings"] as? [String: Any])?["audio"] as? [Double])
        for c in [0, 17, 63] {
            let mean = stride(from: c, to: data.count, by: 64).map { data[$0] }.reduce(0, +) / Double(shape[0])
            XCTAssertEqual(pooled[c], mean, accuracy: 1e-4)
        }
    }

    func testVideoClipEmbedsBothModalities() throws {
        let response = try Curl.run(port: port, path: "/v1/embed?windows=true", headers: ["Content-Type": "video/mp4"],
                                    bodyFile: Fixture.clip)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let embeddings = try XCTUnwrap(response.json["embeddings"] as? [String: Any])
        XCTAssertEqual((embeddings["audio"] as? [Double])?.count, 64)
        XCTAssertEqual((embeddings["video"] as? [Double])?.count, 64)
        XCTAssertEqual((response.json["windows"] as? [[String: Any]])?.count, 1)
    }
}
