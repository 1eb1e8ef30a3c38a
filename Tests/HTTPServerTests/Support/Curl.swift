import Foundation

/// HTTP through the curl binary: it sends exactly what we ask (odd methods, missing lengths, chunked bodies),
/// and many can run at once as separate processes, which is what concurrent clients look like to the server.
struct Curl {
    struct Response {
        var status: Int
        var headers: [String: String]  // lower-cased names; a repeated one's values joined with ", "
        var body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
    }

    let process = Process()
    private let scratch: URL

    /// Starts a request without waiting for it; `finish()` collects the answer. With `trusting` (a CA or
    /// self-signed certificate) the request goes over HTTPS and the server must present that certificate.
    init(port: Int, path: String, method: String? = nil, headers: [String: String] = [:], bodyFile: URL? = nil,
         form: URL? = nil, chunked: Bool = false, trusting certificate: URL? = nil) throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var arguments = ["-s", "-S", "--max-time", "120", "-D", scratch.appendingPathComponent("h").path,
                         "-o", scratch.appendingPathComponent("b").path, "-w", "%{http_code}"]
        // `-X HEAD` would wait for the body Content-Length announces; `--head` knows none comes (and writes the
        // headers where the body would go).
        if method == "HEAD" { arguments.append("--head") } else if let method { arguments += ["-X", method] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if chunked { arguments += ["-H", "Transfer-Encoding: chunked"] }
        if let bodyFile { arguments += ["--data-binary", "@\(bodyFile.path)"] }
        if let form { arguments += ["-F", "file=@\(form.path)"] }
        if let certificate { arguments += ["--cacert", certificate.path] }
        arguments.append("\(certificate == nil ? "http" : "https")://127.0.0.1:\(port)\(path)")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    func finish() throws -> Response {
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let headerText = (try? String(contentsOf: scratch.appendingPathComponent("h"), encoding: .utf8)) ?? ""
        var headers: [String: String] = [:]
        var status = 0
        // With 100-continue there can be two header blocks; the last one is the answer.
        for line in headerText.split(separator: "\r\n") {
            if line.hasPrefix("HTTP/") {
                status = Int(line.split(separator: " ")[1]) ?? 0
                headers = [:]
            } else if let colon = line.firstIndex(of: ":") {
                // A repeated header (Vary) is one comma-separated list, as HTTP defines it.
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name] = headers[name].map { "\($0), \(value)" } ?? value
            }
        }
        let body = (try? Data(contentsOf: scratch.appendingPathComponent("b"))) ?? Data()
        return Response(status: status, headers: headers, body: body)
    }

    static func run(port: Int, path: String, method: String? = nil, headers: [String: String] = [:],
                    bodyFile: URL? = nil, form: URL? = nil, chunked: Bool = false,
                    trusting certificate: URL? = nil) throws -> Response {
        try Curl(port: port, path: path, method: method, headers: headers, bodyFile: bodyFile, form: form,
                 chunked: chunked, trusting: certificate).finish()
    }
}
