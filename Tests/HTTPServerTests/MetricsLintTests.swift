import Foundation
import XCTest

/// /metrics of a live daemon after some traffic (so labelled counters and histograms exist) passes
/// `promtool check metrics` (Debian package `prometheus`, installed by deploy/setup.sh) with no complaint,
/// and every family has HELP text.
final class MetricsLintTests: XCTestCase {
    private static let promtool = "/usr/bin/promtool"

    func testMetricsPassPromtoolWithHelpForEveryFamily() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.promtool) else {
            return XCTFail("\(Self.promtool) is missing: install the Debian package prometheus (deploy/setup.sh does)")
        }
        let daemon = try RunningDaemon(settings: ["cors_allowed_origins": "*"])
        // Traffic that makes every kind of series: 200s on both routes, client errors, a deadline, a preflight.
        let tone = ["Content-Type": "audio/wav"]
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/v1/classify", headers: tone, bodyFile: Fixture.tone).status, 200)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/v1/embed", headers: tone, bodyFile: Fixture.tone).status, 200)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/v1/classify?timeout_ms=1", headers: tone,
                                    bodyFile: Fixture.tone).status, 503)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/v1/classify?top_k=0", headers: tone,
                                    bodyFile: Fixture.tone).status, 400)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/nowhere").status, 404)
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/v1/models", method: "OPTIONS",
                                    headers: ["Origin": "https://a.example", "Access-Control-Request-Method": "GET"]).status, 204)
        let text = String(decoding: try Curl.run(port: daemon.port, path: "/metrics").body, as: UTF8.self)
        XCTAssertEqual(daemon.terminateAndWait(), 0)

        for series in ["avmae_request_duration_seconds_bucket{route=\"/v1/classify\",le=\"+Inf\"}",
                       "avmae_requests_total{route=\"/v1/classify\",code=\"503\"}", "avmae_batch_size_bucket",
                       "avmae_rejected_total{model=\"avmae-demo\",reason=\"deadline\"}",
                       "avmae_client_disconnects_total{model=\"avmae-demo\",stage=\"queue\"}",
                       "process_cpu_seconds_total"] {
            XCTAssertTrue(text.contains(series), "no \(series) in /metrics")
        }
        let lines = text.split(separator: "\n")
        let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(lines.filter { $0.hasPrefix("# HELP ") && $0.split(separator: " ").count > 3 }
            .map { $0.split(separator: " ")[2] })
        XCTAssertGreaterThan(typed.count, 15)
        XCTAssertEqual(typed.subtracting(helped).sorted(), [], "families without HELP text")

        let (status, output) = try Self.promtoolCheck(text)
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output, "", "promtool check metrics has complaints")
    }

    /// `promtool check metrics` reads the exposition on stdin and prints one line per problem.
    private static func promtoolCheck(_ exposition: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
