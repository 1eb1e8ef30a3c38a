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
        XCTAssertEqual(config.bundle, "/b/file")
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

    /// A command's own defaults (the bulk runs') replace the built-in ones and lose to every layer the user sets.
    func testCommandDefaultsSitBelowFileEnvironmentAndFlags() throws {
        let config = try ServerConfig.load(
            file: try file(#"{"decode_threads": 3}"#), environment: ["AVMAE_MAX_QUEUE": "5"], flags: ["bundle": "/b"],
            defaults: ["decode_threads": "7", "max_queue": "1000", "request_timeout_seconds": "600"])
        XCTAssertEqual(config.decodeThreads, 3)
        XCTAssertEqual(config.maxQueue, 5)
        XCTAssertEqual(config.requestTimeoutSeconds, 600)
        XCTAssertEqual(config.serving.requestTimeoutSeconds, 600)
        XCTAssertEqual(config.serving.maxQueuedRows, 5)
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["bundle": "/b"],
                                                   defaults: ["max_bach": "4"]))
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
                           .invalid("no model bundle; pass --bundle DIR or set AVMAE_BUNDLE"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:], flags: ["bundle": "/b", "precision": "int4"])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .badValue(key: "precision", value: "int4", source: "flag"))
        }
        XCTAssertThrowsError(try ServerConfig.load(file: try file("[1, 2]"), environment: [:], flags: [:]))
    }
}
