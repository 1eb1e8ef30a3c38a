import Foundation
import Glibc
import SystemIntegration

/// One end of a SOCK_SEQPACKET socket pair: each send arrives as one whole message, in order, and the end closing
/// (the other process exiting, however it ends) reads as `.closed`. Messages are small JSON documents; the
/// decoded media goes through `SharedMemoryFile`s instead.
final class MessageChannel: @unchecked Sendable {
    let descriptor: Int32
    /// Far above the largest control message (a window's layout, an error with its message).
    private static let maxMessageBytes = 64 * 1024

    enum Received<Message> {
        case message(Message)
        case closed
        case timedOut
    }

    /// A connected pair, both ends closed on exec.
    static func pair() throws -> (MessageChannel, MessageChannel) {
        var ends: [Int32] = [-1, -1]
        try check("socketpair", socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends))
        return (MessageChannel(adopting: ends[0]), MessageChannel(adopting: ends[1]))
    }

    init(adopting descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    func send<Message: Encodable>(_ message: Message) throws {
        let data = try JSONEncoder().encode(message)
        precondition(data.count <= Self.maxMessageBytes, "control message of \(data.count) bytes")
        // MSG_NOSIGNAL: a peer that died answers EPIPE here rather than SIGPIPE for the whole process.
        let sent = data.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        try check("send", sent)
    }

    /// Waits at most `timeout` seconds (nil: for ever) for the next message.
    func receive<Message: Decodable>(_ type: Message.Type, timeout: Double? = nil) throws -> Received<Message> {
        if let timeout {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = try Self.retrying { poll(&poller, 1, Int32(max(0, min(timeout * 1000, Double(Int32.max))))) }
            if ready == 0 { return .timedOut }
        }
        var buffer = [UInt8](repeating: 0, count: Self.maxMessageBytes)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        // A peer that died with our messages unread resets the connection instead of closing it.
        if count == 0 || (count == -1 && errno == ECONNRESET) { return .closed }
        if count == -1 && errno == EINTR { return try receive(type, timeout: timeout) }
        try check("recv", count)
        return .message(try JSONDecoder().decode(type, from: Data(buffer[..<count])))
    }

    private static func retrying<T: BinaryInteger>(_ call: () -> T, function: String = #function) throws -> T {
        while true {
            let result = call()
            if result == -1 && errno == EINTR { continue }
            return try check("\(function)", result)
        }
    }
}
