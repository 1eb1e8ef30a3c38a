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

    func testCORSOriginsAreAListOfOriginsOrAStar() throws {
        XCTAssertEqual(ServerConfig().corsAllowedOrigins.origins, [], "CORS is off by default")
        let fromFile = try ServerConfig.load(
            file: try file(#"{"bundle": "/b", "cors_allowed_origins": ["https://a.example", "http://localhost:3000"]}"#),
            environment: [:], flags: [:])
        XCTAssertEqual(fromFile.corsAllowedOrigins.origins, ["https://a.example", "http://localhost:3000"])
        XCTAssertTrue(fromFile.description.contains("cors_allowed_origins=https://a.example,http://localhost:3000"))
        let fromEnvironment = try ServerConfig.load(
            file: nil, environment: ["AVMAE_BUNDLE": "/b", "AVMAE_CORS_ALLOWED_ORIGINS": " https://a.example , * "],
            flags: [:])
        XCTAssertEqual(fromEnvironment.corsAllowedOrigins.origins, ["https://a.example", "*"])
        for bad in ["a.example", "https://a.example/", "https://a.example/app", "ftp://a.example", "https://"] {
            XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: [:],
                                                       flags: ["bundle": "/b", "cors_allowed_origins": bad])) {
                XCTAssertEqual($0 as? ServerConfig.ConfigError,
                               .badValue(key: "cors_allowed_origins", value: bad, source: "flag"), bad)
            }
        }
    }
}
