/// The browser playground: a page at `/` with its script and style sheet, which classifies and embeds clips
/// through the public /v1 API exactly as a client would. The three files are compiled into the binary
/// (SwiftPM `.embedInCode`), so an installed binary needs nothing beside it and the page works offline.
enum Playground {
    struct Asset {
        var contentType: String
        var body: [UInt8]
    }

    /// Every path the playground answers; `Route` has one case for each, and `auth_exempt_paths` lists them
    /// by default, so the page loads without a key and can then ask for one.
    static let assets: [String: Asset] = [
        "/": Asset(contentType: "text/html; charset=utf-8", body: PackageResources.index_html),
        "/playground.js": Asset(contentType: "text/javascript; charset=utf-8", body: PackageResources.playground_js),
        "/playground.css": Asset(contentType: "text/css; charset=utf-8", body: PackageResources.playground_css),
    ]

    static var paths: [String] { assets.keys.sorted() }

    /// Scripts, styles and connections from this server only; no inline script or style; the page's icon is
    /// an empty data: URL so the browser does not ask for a /favicon.ico that does not exist.
    static let contentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func response(path: String) -> HTTPResponse? {
        guard let asset = assets[path] else { return nil }
        var headers = HTTPHeaders()
        headers.add("Content-Type", asset.contentType)
        // The files change with the binary, and are small: revalidate on every load rather than serve stale ones.
        headers.add("Cache-Control", "no-cache")
        headers.add("Content-Security-Policy", contentSecurityPolicy)
        headers.add("X-Content-Type-Options", "nosniff")
        headers.add("Referrer-Policy", "no-referrer")
        return HTTPResponse(status: 200, headers: headers, body: asset.body)
    }
}
