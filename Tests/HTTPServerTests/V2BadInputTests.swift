import AVMAE
import Foundation
import XCTest

/// Malformed /v2 infer bodies: each is a 400 (or 413) in the protocol's {"error": "..."} shape that says what is
/// wrong, and the daemon keeps answering.
final class V2BadInputTests: SharedDaemonTestCase {
    static let maxBody = 2_000_000

    override class func makeDaemon() throws -> RunningDaemon {
        try RunningDaemon(settings: ["max_body_bytes": "\(maxBody)"])
    }

    private let path = "/v2/models/\(DemoBundle.config().name)/infer"

    /// Sends raw `body` bytes with `headerLength` (if any) and checks the status and that the message names `mentions`.
    private func assertRefused(_ body: Data, headerLength: String? = nil, status: Int = 400, mentions: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("v2-bad-\(UUID().uuidString).bin")
        try body.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        var headers = ["Content-Type": "application/octet-stream"]
        if let headerLength { headers["Inference-Header-Content-Length"] = headerLength }
        let response = try Curl.run(port: port, path: path, headers: headers, bodyFile: url)
        XCTAssertEqual(response.status, status, String(decoding: response.body, as: UTF8.self), file: file, line: line)
        let message = try XCTUnwrap(response.json["error"] as? String, "not {\"error\": string}", file: file, line: line)
        XCTAssertTrue(message.contains(mentions), "'\(message)' does not mention '\(mentions)'", file: file, line: line)
    }

    private func assertRefused(_ request: V2Request, mentions: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (url, headerLength) = try request.write()
        defer { try? FileManager.default.removeItem(at: url) }
        try assertRefused(try Data(contentsOf: url), headerLength: "\(headerLength)", mentions: mentions, file: file, line: line)
    }

    private func json(_ object: [String: Any]) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

    func testMalformedJSONAndMissingFields() throws {
        try assertRefused(Data("{\"inputs\": [".utf8), mentions: "not valid JSON")
        try assertRefused(try json(["outputs": []]), mentions: "inputs")
        try assertRefused(try json(["inputs": []]), mentions: "no inputs")
        try assertRefused(try json(["inputs": [["name": "WAVEFORM", "datatype": "FP32", "shape": [1, 160000]]]]),
                          mentions: "neither data nor a binary_data_size")
    }

    func testWrongNamesDatatypesAndShapes() throws {
        var unknown = V2Request()
        unknown.floats("AUDIO", shape: [1, 4], [0, 0, 0, 0])
        try assertRefused(unknown, mentions: "unknown input 'AUDIO'")

        var datatype = V2Request()
        datatype.binaryInput("WAVEFORM", datatype: "FP64", shape: [1, 160000], bytes: Data(count: 8 * 160000))
        try assertRefused(datatype, mentions: "must be FP32, got FP64")

        var shape = V2Request()
        shape.floats("WAVEFORM", shape: [1, 1000], [Float](repeating: 0, count: 1000))
        try assertRefused(shape, mentions: "must have shape [-1, 160000]")

        var frames = V2Request()
        frames.binaryInput("FRAMES", datatype: "UINT8", shape: [1, 2, 224, 224, 3], bytes: Data(count: 2 * 224 * 224 * 3))
        try assertRefused(frames, mentions: "must have shape [-1, 32, 224, 224, 3]")

        var mixed = V2Request()
        try mixed.clip(Fixture.tone)
        mixed.floats("WAVEFORM", shape: [1, 160000], [Float](repeating: 0, count: 160000))
        try assertRefused(mixed, mentions: "CLIP alone")

        var batches = V2Request()
        batches.floats("WAVEFORM", shape: [2, 160000], [Float](repeating: 0, count: 2 * 160000))
        batches.floats("SPECTROGRAM", shape: [1, 1000, 128], [Float](repeating: 0, count: 1000 * 128))
        try assertRefused(batches, mentions: "batch sizes differ")

        var both = V2Request()
        both.floats("WAVEFORM", shape: [1, 160000], [Float](repeating: 0, count: 160000))
        both.floats("SPECTROGRAM", shape: [1, 1000, 128], [Float](repeating: 0, count: 1000 * 128))
        try assertRefused(both, mentions: "not both")

        var elements = V2Request()
        let tone = try Data(contentsOf: Fixture.tone)
        elements.binaryInput("CLIP", datatype: "BYTES", shape: [3],
                             bytes: V2Request.littleEndian(UInt32(tone.count)) + tone)
        try assertRefused(elements, mentions: "needs 3 BYTES elements, got 1")

        var clipShape = V2Request()
        clipShape.binaryInput("CLIP", datatype: "BYTES", shape: [1, 2],
                              bytes: V2Request.littleEndian(UInt32(tone.count)) + tone)
        try assertRefused(clipShape, mentions: "its shape is [B]")

        var output = V2Request()
        try output.clip(Fixture.tone)
        output.outputs = [["name": "SCORES"]]
        try assertRefused(output, mentions: "unknown output 'SCORES'")

        var classification = V2Request()
        try classification.clip(Fixture.tone)
        classification.outputs = [["name": "AUDIO_EMBEDDING", "parameters": ["classification": 3]]]
        try assertRefused(classification, mentions: "is an embedding")

        try assertRefused(try json(["inputs": [["name": "WAVEFORM", "datatype": "FP32", "shape": [1, 160000],
                                                "data": [String](repeating: "x", count: 160000)]]]),
                          mentions: "data does not match datatype FP32")
    }

    func testBinaryLengthsThatDoNotAddUp() throws {
        let header = try json(["inputs": [["name": "WAVEFORM", "datatype": "FP32", "shape": [1, 160000],
                                           "parameters": ["binary_data_size": 640000]]]])
        // Fewer bytes than binary_data_size says.
        try assertRefused(header + Data(count: 1000), headerLength: "\(header.count)", mentions: "only 1000 bytes are left")
        // A header length past the end of the body.
        try assertRefused(header, headerLength: "\(header.count + 10)", mentions: "the body has only")
        try assertRefused(header, headerLength: "ten", mentions: "must be a byte count")
        // Bytes nobody claimed after the last input.
        try assertRefused(header + Data(count: 640000 + 3), headerLength: "\(header.count)", mentions: "after the last input")
        // A size that fits the body but not the shape.
        let short = try json(["inputs": [["name": "WAVEFORM", "datatype": "FP32", "shape": [1, 160000],
                                          "parameters": ["binary_data_size": 400]]]])
        try assertRefused(short + Data(count: 400), headerLength: "\(short.count)", mentions: "needs 640000 bytes of FP32")
        // A BYTES element whose length prefix runs past its tensor.
        let clip = try json(["inputs": [["name": "CLIP", "datatype": "BYTES", "shape": [1],
                                         "parameters": ["binary_data_size": 8]]]])
        try assertRefused(clip + V2Request.littleEndian(UInt32(100)) + Data(count: 4), headerLength: "\(clip.count)",
                          mentions: "says 100 bytes, 4 are left")
    }

    func testBodyOverTheLimitIs413InTheProtocolShape() throws {
        try assertRefused(Data(count: Self.maxBody + 1), headerLength: "10", status: 413, mentions: "max_body_bytes")
    }

    /// In a batch of files, the one that fails fails the request, and the error names it.
    func testAnUndecodableElementOfABatchIsNamed() throws {
        let tone = try Data(contentsOf: Fixture.tone)
        let garbage = Data(repeating: 7, count: 64)
        var request = V2Request()
        request.binaryInput("CLIP", datatype: "BYTES", shape: [2],
                            bytes: V2Request.littleEndian(UInt32(tone.count)) + tone
                                + V2Request.littleEndian(UInt32(garbage.count)) + garbage)
        let (url, headerLength) = try request.write()
        defer { try? FileManager.default.removeItem(at: url) }
        let response = try Curl.run(port: port, path: path, headers: ["Inference-Header-Content-Length": "\(headerLength)"],
                                    bodyFile: url)
        XCTAssertEqual(response.status, 422)
        let message = try XCTUnwrap(response.json["error"] as? String)
        XCTAssertTrue(message.hasPrefix("CLIP element 1: "), message)
    }

    func testUndecodableClipIs422AndTheDaemonStillServes() throws {
        var request = V2Request()
        request.binaryInput("CLIP", datatype: "BYTES", shape: [1],
                            bytes: V2Request.littleEndian(UInt32(64)) + Data(repeating: 7, count: 64))
        let (url, headerLength) = try request.write()
        defer { try? FileManager.default.removeItem(at: url) }
        let response = try Curl.run(port: port, path: path, headers: ["Inference-Header-Content-Length": "\(headerLength)"],
                                    bodyFile: url)
        XCTAssertEqual(response.status, 422)
        XCTAssertNotNil(response.json["error"] as? String)
        XCTAssertEqual(try Curl.run(port: port, path: "/v2/health/ready").status, 200)
    }
}
