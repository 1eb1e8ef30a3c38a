import Foundation
import HTTPServer
import Serving
import XCTest

/// The shipped defaults agree with one another and with the full-size model: the env file shows the built-in
/// values, and every time limit downstream of the queue deadline (drain, systemd stop, Kubernetes grace, nginx
/// read timeout, autoscaling target) leaves room for the deadline plus one reference request at ViT-Large size.
/// The rule and the measured costs behind it are in deploy/README.md "Time limits" and bench/fullsize-results.md.
final class DeployDefaultsTests: XCTestCase {
    /// Model seconds per row at ViT-Large size (demo-bundle --size large, fp32, 2 cores), measured by
    /// bench/fullsize.py with nothing else running (bench/fullsize-results.md), rounded up.
    private static let audiovisualRowSeconds = 29.5
    private static let audioRowSeconds = 2.4
    /// The largest request the time limits are sized for: one 10 s clip, audio + video, 4 crops (4 rows).
    /// Longer clips cost proportionally more (deploy/README.md says how to size for them).
    private static let referenceRequestSeconds = 4 * audiovisualRowSeconds

    private let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../deploy").standardized
    private let config = ServerConfig()

    private func text(_ path: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(path), encoding: .utf8)
    }

    /// Every number `pattern`'s first group matches in `text`; fails the test when there is none.
    private func numbers(_ pattern: String, in text: String, file: StaticString = #filePath, line: UInt = #line) -> [Double] {
        let regex = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        let found = regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).flatMap { Double(text[$0]) }
        }
        XCTAssertFalse(found.isEmpty, "no match for \(pattern)", file: file, line: line)
        return found
    }

    private func number(_ pattern: String, in text: String, file: StaticString = #filePath, line: UInt = #line) -> Double {
        numbers(pattern, in: text, file: file, line: line).first ?? .nan
    }

    func testEnvFileShowsTheBuiltInDefaults() throws {
        let defaults = Dictionary(uniqueKeysWithValues: config.description.split(separator: " ").map {
            let pair = $0.split(separator: "=", maxSplits: 1)
            return (String(pair[0]), pair.count > 1 ? String(pair[1]) : "")
        })
        var compared = 0
        let env = try text("avmae-serve.env")
        let setting = try NSRegularExpression(pattern: "^#?AVMAE_([A-Z_]+)=(.*)$", options: [.anchorsMatchLines])
        for match in setting.matches(in: env, range: NSRange(env.startIndex..., in: env)) {
            let name = String(env[Range(match.range(at: 1), in: env)!])
            let shown = String(env[Range(match.range(at: 2), in: env)!])
            guard let value = defaults[name.lowercased()], value != "(unset)", name != "BUNDLE" else { continue }
            XCTAssertEqual(shown, value, "avmae-serve.env shows AVMAE_\(name)=\(shown), the default is \(value)")
            compared += 1
        }
        let shownEverywhere = defaults.filter { $0.value != "(unset)" && $0.key != "bundle" }.count
        XCTAssertEqual(compared, shownEverywhere, "avmae-serve.env does not show every built-in default")
        // The serving core's own defaults (used by tests and embedders) are the daemon's.
        let serving = ClipService.Configuration()
        XCTAssertEqual(serving.maxBatch, config.maxBatch)
        XCTAssertEqual(serving.maxDelaySeconds * 1000, config.maxDelayMs, accuracy: 1e-9)
        XCTAssertEqual(serving.maxQueuedRows, config.maxQueue)
        XCTAssertEqual(serving.maxBatchSeconds, config.maxBatchSeconds)
        XCTAssertEqual(serving.requestTimeoutSeconds, config.requestTimeoutSeconds)
    }

    func testTimeLimitsCoverTheQueueDeadlinePlusOneFullSizeRequest() throws {
        let deadline = config.requestTimeoutSeconds, drain = config.drainTimeoutSeconds
        let reference = Self.referenceRequestSeconds
        // Admission refuses a request whose estimated wait exceeds its deadline: below one reference request,
        // a single 4-crop request in flight would turn every request behind it away.
        XCTAssertGreaterThanOrEqual(deadline, reference, "request_timeout_seconds is shorter than one reference request")
        // The last request admitted before SIGTERM may wait out its deadline and then run.
        XCTAssertGreaterThanOrEqual(drain, deadline + reference, "drain_timeout_seconds < deadline + one reference request")
        // The row bound must not refuse the cheapest rows before the deadline would.
        XCTAssertGreaterThanOrEqual(Double(config.maxQueue) * Self.audioRowSeconds, deadline,
                                    "max_queue audio rows are less work than the queue deadline")

        let unit = try text("avmae-serve.service")
        let stop = number(#"^TimeoutStopSec=(\d+)"#, in: unit)
        XCTAssertGreaterThanOrEqual(stop, drain + 10, "TimeoutStopSec leaves no margin over the drain")
        let env = try text("avmae-serve.env")
        XCTAssertEqual(numbers(#"TimeoutStopSec=(\d+)"#, in: env), [stop], "avmae-serve.env quotes another TimeoutStopSec")

        let deployment = try text("k8s/deployment.yaml")
        let podDrain = number(#"name: AVMAE_DRAIN_TIMEOUT_SECONDS\s*\n\s*value: "(\d+)""#, in: deployment)
        XCTAssertEqual(podDrain, drain, "the Deployment sets another drain timeout than the default")
        let preStop = number(#"sleep:\s*\n\s*seconds: (\d+)"#, in: deployment)
        let grace = number(#"terminationGracePeriodSeconds: (\d+)"#, in: deployment)
        XCTAssertGreaterThanOrEqual(grace, preStop + podDrain + 10, "terminationGracePeriodSeconds < preStop + drain + margin")

        let nginx = try text("nginx/avmae-serve.conf")
        let read = number(#"^\s*proxy_read_timeout (\d+)s;"#, in: nginx)
        XCTAssertGreaterThanOrEqual(read, deadline + reference, "nginx proxy_read_timeout < deadline + one reference request")

        // Scale out while admitted requests still meet their deadline: the target wait is well inside it.
        let target = number(#"averageValue: "(\d+)""#, in: try text("k8s/hpa.yaml"))
        XCTAssertLessThanOrEqual(target, deadline / 2, "the HPA's target wait leaves no room before admission refuses")
        XCTAssertGreaterThanOrEqual(target, Self.audiovisualRowSeconds, "a target below one row scales on every request")
    }
}
