import AVMAE
import HTTPServer
import XCTest

/// Configuration layering: defaults < JSON file < AVMAE_* environment < flags, one parser for all.
final class ServerConfigTests: XCTestCase {
    private func file(_ json: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID()).json")
        try Data(json.utf8).write(to: url)
        return url.path
    }

    func testLaterLayersWinAndUnrelatedEnvironmentIsIgnored() throws {
        let config = try ServerConfig.load(
            file: try file(#"{"bundle": "/b/file", "max_batch": 4, "max_delay_ms": 2.5, "port": 9000}"#),
            environment: ["AVMAE_MAX_BATCH": "16", "AVMAE_PORT": "9100", "AVMAE_SERVE_BIN": "/x", "HOME": "/root"],
            flags: ["port": "9200"])
        XCTAssertEqual(config.bundle.entries, [.init(name: nil, directory: "/b/file")])
        XCTAssertEqual(config.maxBatch, 16)
        XCTAssertEqual(config.maxDelayMs, 2.5)
        XCTAssertEqual(config.port, 9200)
        XCTAssertEqual(config.maxQueue, ServerConfig().maxQueue, "untouched settings keep their defaults")
        XCTAssertNil(config.hopSeconds)
        XCTAssertTrue(config.description.contains("max_batch=16"))
        XCTAssertEqual(config.precision, .fp32, "fp32 is the default precision")
        let int8 = try ServerConfig.load(file: nil, environment: ["AVMAE_BUNDLE": "/b", "AVMAE_PRECISION": "int8"], flags: [:])
        XCTAssertEqual(int8.precision, .int8)
        XCTAssertTrue(int8.description.contains("precision=int8"))
    }

    /// Bundles as a list, named or not, from a JSON array or the comma-separated form; a repository alone suffices.
    func testSeveralBundlesAndARepository() throws {
        let config = try ServerConfig.load(
            file: try file(#"{"bundle": ["/srv/a", "vgg=/srv/vgg"], "default_model": "vgg"}"#),
            environment: ["AVMAE_MODEL_REPOSITORY": "/srv/models"], flags: [:])
        XCTAssertEqual(config.bundle.entries, [.init(name: nil, directory: "/srv/a"), .init(name: "vgg", directory: "/srv/vgg")])
        XCTAssertEqual(config.modelRepository, "/srv/models")
        XCTAssertEqual(config.defaultModel, "vgg")
        XCTAssertTrue(config.description.contains("bundle=/srv/a,vgg=/srv/vgg"), config.description)
        XCTAssertNoThrow(try ServerConfig.load(file: nil, environment: [:], flags: ["model_repository": "/srv/models"]))
    }

    func testMistakesAreNamedWithTheirSource() throws {
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["max_bach": "4"])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .unknownKey("max_bach", source: "flag"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: ["AVMAE_MAX_BATCH": "many"], flags: [:])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError,
                           .badValue(key: "max_batch", value: "many", source: "environment AVMAE_MAX_BATCH"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["bundle": "/b", "max_batch": "0"])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .invalid("max_batch must be at least 1 (1 = batching off)"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: [:])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError,
                           .invalid("no model; pass --bundle DIR (or NAME=DIR, repeatable) or --model-repository DIR"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["bundle": "bad name=/b"])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .badValue(key: "bundle", value: "bad name=/b", source: "flag"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["bundle": "/b", "precision": "int4"])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .badValue(key: "precision", value: "int4", source: "flag"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: try file("[1, 2]"), environment: [:], flags: [:]))
    }
}
