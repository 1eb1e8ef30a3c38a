import Foundation
import XCTest

/// --tls-cert/--tls-key on a real daemon: HTTPS through libmicrohttpd's GnuTLS support, with a self-signed
/// certificate made by the openssl CLI for this test.
final class TLSTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    func testServesHealthAndClassifyOverHTTPS() throws {
        let (certificate, key) = try selfSigned()
        let daemon = try RunningDaemon(settings: ["tls_cert": certificate.path, "tls_key": key.path],
                                       certificate: certificate)
        let health = try Curl.run(port: daemon.port, path: "/healthz", trusting: certificate)
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")

        let classify = try Curl.run(port: daemon.port, path: "/v1/classify?top_k=3",
                                    headers: ["Content-Type": "audio/wav"], bodyFile: Fixture.tone, trusting: certificate)
        XCTAssertEqual(classify.status, 200)
        XCTAssertEqual((classify.json["labels"] as? [Any])?.count, 3)

        // Plain HTTP on the HTTPS port gets no HTTP answer.
        XCTAssertEqual(try Curl.run(port: daemon.port, path: "/healthz").status, 0)
    }

    func testUnreadableKeyIsAClearStartupError() throws {
        let (certificate, _) = try selfSigned()
        let missing = scratch.appendingPathComponent("missing.pem").path
        let result = try serve(["--tls-cert", certificate.path, "--tls-key", missing])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("tls_key \(missing): cannot read it"), result.output)

        let onlyOne = try serve(["--tls-cert", certificate.path])
        XCTAssertNotEqual(onlyOne.status, 0)
        XCTAssertTrue(onlyOne.output.contains("tls_cert and tls_key go together"), onlyOne.output)

        let swapped = try serve(["--tls-cert", certificate.path, "--tls-key", certificate.path])
        XCTAssertNotEqual(swapped.status, 0)
        XCTAssertTrue(swapped.output.contains("no '-----BEGIN PRIVATE KEY' block"), swapped.output)
    }

    // MARK: Helpers

    private func selfSigned() throws -> (certificate: URL, key: URL) {
        let certificate = scratch.appendingPathComponent("cert.pem"), key = scratch.appendingPathComponent("key.pem")
        let result = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                                                  "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                                                  "-keyout", key.path, "-out", certificate.path])
        XCTAssertEqual(result.status, 0, result.output)
        return (certificate, key)
    }

    /// `avmae-serve serve` with `arguments`, expected to exit before listening.
    private func serve(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let binary = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
                .appendingPathComponent("avmae-serve")
        return try run(binary.path, ["serve", "--bundle", scratch.path, "--port", "0"] + arguments)
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
