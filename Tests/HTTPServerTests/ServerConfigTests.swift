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

    /// A misspelt AVMAE_* variable stops the start like a misspelt flag; Kubernetes' service links for a Service
    /// named avmae-serve (or avmae, whose AVMAE_PORT collides with the port setting) and the tools' variables do not.
    func testEnvironmentIsStrictExceptForServiceLinksAndTools() throws {
        XCTAssertThrowsError(try ServerConfig.load(file: nil, environment: ["AVMAE_BUNDLE": "/b", "AVMAE_MAX_BACH": "4"], flags: [:])) {
            XCTAssertEqual($0 as? ServerConfig.ConfigError, .unknownKey("max_bach", source: "environment AVMAE_MAX_BACH"))
        }
        let kubernetes = [
            "AVMAE_SERVE_SERVICE_HOST": "10.0.0.7", "AVMAE_SERVE_SERVICE_PORT": "8080", "AVMAE_SERVE_SERVICE_PORT_HTTP": "8080",
            "AVMAE_SERVE_PORT": "tcp://10.0.0.7:8080", "AVMAE_SERVE_PORT_8080_TCP": "tcp://10.0.0.7:8080",
            "AVMAE_SERVE_PORT_8080_TCP_PROTO": "tcp", "AVMAE_SERVE_PORT_8080_TCP_PORT": "8080",
            "AVMAE_SERVE_PORT_8080_TCP_ADDR": "10.0.0.7", "AVMAE_PORT": "tcp://10.0.0.9:8080",
            "AVMAE_SERVE_BIN": "/x", "AVMAE_BUNDLE": "/b",
        ]
        let config = try ServerConfig.load(file: nil, environment: kubernetes, flags: [:])
        XCTAssertEqual(config.port, ServerConfig().port)
        let ignored = ServerConfig.ignoredEnvironment(kubernetes)
        XCTAssertEqual(ignored.count, 9, "\(ignored)")
        XCTAssertFalse(ignored.contains { $0.hasPrefix("AVMAE_SERVE_BIN") || $0.hasPrefix("AVMAE_BUNDLE") })
    }

    /// The config file keeps JSON's types: a number for a number, a string for a path.
    func testConfigFileValuesKeepTheirTypes() throws {
        XCTAssertThrowsError(try ServerConfig.load(file: try file(#"{"bundle": "/b", "max_batch": "8"}"#), environment: [:], flags: [:]))
        XCTAssertThrowsError(try ServerConfig.load(file: try file(#"{"bundle": "/b", "max_batch": 2.5}"#), environment: [:], flags: [:]))
        XCTAssertThrowsError(try ServerConfig.load(file: try file(#"{"bundle": "/b", "host": 8080}"#), environment: [:], flags: [:]))
        XCTAssertThrowsError(try ServerConfig.load(file: try file(#"{"bundle": "/b", "max_bach": 8}"#), environment: [:], flags: [:])) {
            guard case .unknownKey("max_bach", _)? = $0 as? ServerConfig.ConfigError else { return XCTFail("\($0)") }
        }
        let config = try ServerConfig.load(file: try file(#"{"bundle": "/b", "max_batch": 8, "max_delay_ms": 3}"#),
                                           environment: [:], flags: [:])
        XCTAssertEqual(config.maxBatch, 8)
        XCTAssertEqual(config.maxDelayMs, 3)
    }

    /// deploy/avmae-serve.env shows each setting's built-in default, commented out (empty for an unset one), so
    /// uncommenting a line never changes anything by surprise.
    func testEnvFileCommentsShowTheRealDefaults() throws {
        let envFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/avmae-serve.env")
        let defaults = ServerConfig()
        var checked = 0
        for line in try String(contentsOf: envFile, encoding: .utf8).split(separator: "\n") where line.hasPrefix("#AVMAE_") {
            let pair = line.dropFirst().split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let field = ServerConfig.fields.first(where: { $0.environmentName == pair[0] }) else { continue }
            let shown = pair.count == 2 ? String(pair[1]) : ""
            let actual = field.value(in: defaults)
            XCTAssertEqual(shown, actual == "(unset)" ? "" : actual, "\(field.environmentName) in deploy/avmae-serve.env")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 25)
    }

    /// Every setting has a flag, a variable and a help line, from the one table.
    func testEverySettingHasAFlagAndHelp() {
        for field in ServerConfig.fields {
            XCTAssertEqual(field.flag, "--" + field.key.replacingOccurrences(of: "_", with: "-"))
            XCTAssertFalse(field.help.isEmpty, field.key)
            XCTAssertTrue(ServerConfig.settingsHelp.contains(field.flag + " (" + field.environmentName), field.key)
        }
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
