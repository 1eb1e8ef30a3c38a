import Foundation
import HTTPServer
import XCTest

/// The playground page at `/` on a real daemon that wants API keys: the page and its two files load without a
/// key, with their content types and a strict Content-Security-Policy, and they fetch nothing from elsewhere.
/// (Tests/browser drives the page itself in Chromium.)
final class PlaygroundTests: SharedDaemonTestCase {
    private static let assets = [
        "/": "text/html; charset=utf-8",
        "/playground.js": "text/javascript; charset=utf-8",
        "/playground.css": "text/css; charset=utf-8",
    ]

    override class func makeDaemon() throws -> RunningDaemon {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try "playground-key-0123456789\n".write(to: file, atomically: true, encoding: .utf8)
        return try RunningDaemon(settings: ["api_key_file": file.path])
    }

    private func text(_ path: String) throws -> String {
        String(decoding: try Curl.run(port: port, path: path).body, as: UTF8.self)
    }

    func testPageAndFilesAreServedWithoutAKey() throws {
        for (path, contentType) in Self.assets {
            let response = try Curl.run(port: port, path: path)
            XCTAssertEqual(response.status, 200, path)
            XCTAssertEqual(response.headers["content-type"], contentType, path)
            XCTAssertEqual(response.headers["cache-control"], "no-cache", path)
            XCTAssertEqual(response.headers["x-content-type-options"], "nosniff", path)
            let policy = try XCTUnwrap(response.headers["content-security-policy"], path)
            XCTAssertTrue(policy.hasPrefix("default-src 'self';"), policy)
            XCTAssertFalse(policy.contains("unsafe-inline") || policy.contains("unsafe-eval"), policy)
            XCTAssertGreaterThan(response.body.count, 500, path)
        }
        // ...while the API behind it still wants the key, which is what makes the page ask for one.
        XCTAssertEqual(try Curl.run(port: port, path: "/v1/models").status, 401)
    }

    func testHeadHasNoBodyAndOtherMethodsAre405() throws {
        let head = try Curl.run(port: port, path: "/", method: "HEAD")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-type"], "text/html; charset=utf-8")
        let get = try Curl.run(port: port, path: "/")
        XCTAssertEqual(head.headers["content-length"], "\(get.body.count)")
        XCTAssertFalse(String(decoding: head.body, as: UTF8.self).contains("<!doctype"), "HEAD sent the page")
        let post = try Curl.run(port: port, path: "/", method: "POST")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET, HEAD")
        XCTAssertEqual(try Curl.run(port: port, path: "/playground.html").status, 401, "only the listed files are open")
    }

    /// What the page references is served here, and no file names another host: it must work offline.
    func testPageLoadsOnlyItsOwnFiles() throws {
        let page = try text("/")
        let references = matches(#"(?:src|href)="([^"]*)""#, in: page)
        XCTAssertEqual(Set(references), ["data:,", "/playground.css", "/playground.js"])
        for path in Self.assets.keys {
            let body = try text(path)
            XCTAssertFalse(body.contains("://"), "\(path) names another host")
            XCTAssertFalse(body.contains("@import"), path)
        }
        // The policy allows no inline script or style, so the page must have none.
        XCTAssertEqual(matches(#"<script([^>]*)>"#, in: page), [#" type="module" src="/playground.js""#])
        XCTAssertTrue(page.contains("<script type=\"module\" src=\"/playground.js\"></script>"))
        XCTAssertTrue(matches(#"<style|\sstyle=|\son[a-z]+="#, in: page).isEmpty)
    }

    /// The page is documentation of the API: every path its script calls is one of openapi.yaml's.
    func testScriptCallsOnlyDocumentedRoutes() throws {
        let script = try text("/playground.js")
        let called = Set(matches(#""(/v1/[a-z]+)""#, in: script))
        XCTAssertEqual(called, ["/v1/models", "/v1/classify", "/v1/embed"])
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let contract = try String(contentsOf: repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        for path in called { XCTAssertTrue(contract.contains("\n  \(path):\n"), path) }
        // The options it sends exist: `windows` for the timeline, `top_k` for the bars.
        XCTAssertTrue(script.contains("top_k: topK, windows: true"))
    }

    func testPlaygroundIsExemptFromKeysByDefault() {
        XCTAssertEqual(ServerConfig().authExemptPaths.description,
                       "/healthz,/readyz,/metrics,/v2/health/live,/v2/health/ready,/,/playground.css,/playground.js")
    }

    private func matches(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
            let range = $0.numberOfRanges > 1 ? $0.range(at: 1) : $0.range
            return String(text[Range(range, in: text)!])
        }
    }
}
