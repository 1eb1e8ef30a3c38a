import Foundation
import XCTest

/// The systemd side of sd_notify for tests: an AF_UNIX datagram socket bound to a temporary path (or an
/// abstract name) whose datagrams the test reads back one by one.
final class DatagramListener {
    /// The value to put in NOTIFY_SOCKET.
    let address: String
    private let fd: Int32
    private let path: String?

    init(abstract: Bool = false) throws {
        let name = "avmae-notify-\(getpid())-\(UUID().uuidString.prefix(8))"
        path = abstract ? nil : FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        address = path ?? "@" + name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var sockaddr = sockaddr_un()
        sockaddr.sun_family = sa_family_t(AF_UNIX)
        let bytes = path.map { Array($0.utf8) + [0] } ?? [0] + Array(name.utf8)
        withUnsafeMutableBytes(of: &sockaddr.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &sockaddr) {
            $0.withMemoryRebound(to: Foundation.sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno)!) }
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// The next datagram, or nil if none arrives within `timeout` seconds.
    func receive(timeout: Double = 5) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// Datagrams until one satisfies `match` (returned), skipping others such as STATUS= updates.
    func receive(until match: (String) -> Bool, timeout: Double) -> String? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while case let left = deadline.timeIntervalSinceNow, left > 0 {
            guard let message = receive(timeout: left) else { return nil }
            if match(message) { return message }
        }
        return nil
    }
}
