import AVMAE
import XCTest

/// An audio-only pretrained encoder (no head): embeddings work, classification is refused, and a video upload
/// is served from its sound track.
final class PretrainedModelTests: SharedDaemonTestCase {
    override class func makeDaemon() throws -> RunningDaemon {
        var config = DemoBundle.config()
        config.name = "avmae-demo-pretrained-audio"
        config.kind = .pretrained
        config.encoder = .separate
        config.modalities = [.audio]
        config.numClasses = 0
        config.labelSet = .none
        return try RunningDaemon(config: config)
    }

    func testModelsSaysPretrainedWithoutClasses() throws {
        let entry = try XCTUnwrap((try Curl.run(port: port, path: "/v1/models").json["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(entry["kind"] as? String, "pretrained")
        XCTAssertEqual(entry["classes"] as? Int, 0)
        XCTAssertEqual(entry["label_set"] as? String, "none")
        XCTAssertEqual(entry["modalities"] as? [String], ["audio"])
    }

    func testClassifyIsRefusedWithAPointerToEmbed() throws {
        let response = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "audio/wav"],
                                    bodyFile: Fixture.tone)
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(response.errorCode, "unsupported_task")
    }

    func testVideoUploadIsEmbeddedFromItsSoundTrack() throws {
        let response = try Curl.run(port: port, path: "/v1/embed", headers: ["Content-Type": "video/mp4"],
                                    bodyFile: Fixture.clip)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        XCTAssertEqual(response.json["modalities"] as? [String], ["audio"])
        let video = try Curl.run(port: port, path: "/v1/embed?modality=video", headers: ["Content-Type": "video/mp4"],
                                 bodyFile: Fixture.clip)
        XCTAssertEqual(video.status, 422)
        XCTAssertEqual(video.errorCode, "modality_unavailable")
    }
}
