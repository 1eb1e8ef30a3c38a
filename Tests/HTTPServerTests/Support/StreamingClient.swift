import Foundation
import Glibc

/// A plain HTTP/1.1 client over a loopback socket for NDJSON streams: it sends a body from a file, notes when
/// the last byte went out, and reads the chunked answer line by line with the time each line arrived. curl
/// cannot say when its upload ended, and the first line's latency is measured from there.
final class StreamingClient {
    struct Line {
        var text: String
        /// Since the last byte of the upload was written.
        var seconds: Double
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    }

    struct Response {
        var status: Int
        var headers: [String: String]  // lower-cased names
        var lines: [Line]
    }

    enum Failure: Error {
        case connect(Int32)
        case send(Int32)
        case malformed(String)
    }

    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var uploadEnd: UInt64 = 0

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure.connect(errno) }
    }

    deinit { Glibc.close(descriptor) }

    /// Sends the request with `bodyFile` as its body, a megabyte at a time.
    func send(path: String, contentType: String, bodyFile: URL) throws {
        let size = try FileManager.default.attributesOfItem(atPath: bodyFile.path)[.size] as! Int
        try write(Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\nContent-Length: \(size)\r\n\r\n".utf8))
        let file = try FileHandle(forReadingFrom: bodyFile)
        defer { try? file.close() }
        while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            try write(Array(chunk))
        }
        uploadEnd = DispatchTime.now().uptimeNanoseconds
    }

    /// Reads the status, headers and body; `onLine` sees each line as it arrives and returns false to hang up.
    func readResponse(onLine: (Line) -> Bool = { _ in true }) throws -> Response {
        let head = try readUntil("\r\n\r\n")
        let headLines = head.split(separator: "\r\n")
        guard let statusLine = headLines.first, statusLine.split(separator: " ").count >= 2,
              let status = Int(statusLine.split(separator: " ")[1]) else { throw Failure.malformed(head) }
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var lines: [Line] = []
        var pending: [UInt8] = []
        func take(_ bytes: [UInt8]) -> Bool {
            pending += bytes
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Line(text: String(decoding: pending[..<newline], as: UTF8.self), seconds: elapsed())
                pending.removeSubrange(...newline)
                lines.append(line)
                if !onLine(line) { return false }
            }
            return true
        }
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                guard let size = Int(try readUntil("\r\n").split(separator: ";")[0], radix: 16) else { throw Failure.malformed("chunk size") }
                if size == 0 { break }
                let data = try readExactly(size + 2)
                guard take(Array(data.prefix(size))) else { break }
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            _ = take(try readExactly(length) + [UInt8(ascii: "\n")])
        }
        return Response(status: status, headers: headers, lines: lines)
    }

    private func elapsed() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - uploadEnd) / 1e9
    }

    private func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure.send(errno) }
            done += sent
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let got = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { throw Failure.malformed("the server closed the connection") }
        buffer += chunk[..<got]
    }

    private func readUntil(_ marker: String) throws -> String {
        let pattern = Array(marker.utf8)
        while true {
            if let range = buffer.firstRange(of: pattern) {
                let text = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<range.upperBound)
                return text
            }
            try fill()
        }
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        defer { buffer.removeSubrange(..<count) }
        return Array(buffer[..<count])
    }
}

/// Resident memory of a process and every process below it (the daemon and its decode workers), sampled on a
/// thread of its own until `stop()`.
final class ResidentMemorySampler: @unchecked Sendable {
    private let pid: Int32
    private let lock = NSLock()
    private var peak = 0       // guarded by lock
    private var running = true // guarded by lock
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32) {
        self.pid = pid
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let now = Self.treeBytes(pid)
                lock.withLock { peak = max(peak, now) }
                Thread.sleep(forTimeInterval: 0.02)
            }
            done.signal()
        }
    }

    /// The highest sample, in bytes.
    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { peak }
    }

    static func treeBytes(_ pid: Int32) -> Int {
        residentBytes(pid) + children(pid).reduce(0) { $0 + treeBytes($1) }
    }

    private static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return 0 }
        return kib * 1024
    }

    private static func children(_ pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }
}
