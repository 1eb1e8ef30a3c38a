import Dispatch
import Foundation
import Logging

/// The sd_notify(3) protocol without libsystemd: newline-separated `KEY=VALUE` datagrams sent over AF_UNIX
/// SOCK_DGRAM to $NOTIFY_SOCKET. systemd sets that variable for `Type=notify` units; everywhere else it is
/// unset and every method here does nothing, so callers need no "am I under systemd?" checks.
///
/// Protocol: https://www.freedesktop.org/software/systemd/man/252/sd_notify.html
///
/// Threading: `send` may be called from any thread (each call opens its own socket, as sd_notify does).
/// The watchdog timer runs on this object's private queue; its owner stops it with `stopWatchdog()`
/// (or by releasing the notifier).
public final class SystemdNotifier: @unchecked Sendable {
    /// Where $NOTIFY_SOCKET points: a filesystem path, or a Linux abstract name (spelled with a leading '@').
    public enum Destination: Equatable, Sendable {
        case path(String)
        case abstract(String)
    }

    /// nil when not started by systemd (or when NOTIFY_SOCKET is malformed, which is logged once).
    public let destination: Destination?
    /// Half of $WATCHDOG_USEC, the ping period sd_watchdog_enabled(3) recommends; nil when systemd watches
    /// no process or another one (WATCHDOG_PID names a different pid).
    public let watchdogInterval: Double?

    private let logger: Logger
    private let wire: Wire
    private let queue = DispatchQueue(label: "avmae.systemd.watchdog")
    private var timer: DispatchSourceTimer?  // guarded by queue

    public init(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment,
                pid: pid_t = getpid()) {
        self.logger = logger
        let value = environment["NOTIFY_SOCKET"] ?? ""
        destination = Self.parse(value)
        wire = Wire(destination: destination, logger: logger)
        if destination == nil, !value.isEmpty {
            // sd_notify rejects these too; saying so beats a unit that silently never becomes ready.
            logger.warning("ignoring NOTIFY_SOCKET: not an absolute path or @name that fits sockaddr_un",
                           metadata: ["NOTIFY_SOCKET": "\(value)"])
        }
        let watchedPid = environment["WATCHDOG_PID"].flatMap { pid_t($0) }
        if destination != nil, let usec = environment["WATCHDOG_USEC"].flatMap({ UInt64($0) }), usec > 0,
           watchedPid == nil || watchedPid == pid {
            watchdogInterval = Double(usec) / 2_000_000
        } else {
            watchdogInterval = nil
        }
    }

    deinit { queue.sync { timer?.cancel() } }

    // MARK: The messages the daemon sends

    /// The model is loaded and warm: /readyz answers 200 from now on.
    public func ready(status: String = "serving") { deliver(["READY=1", Self.status(status)]) }

    /// SIGTERM arrived; draining in-flight requests before exit.
    public func stopping(status: String = "draining") { deliver(["STOPPING=1", Self.status(status)]) }

    /// SIGHUP arrived; the bundle is being reloaded. Send `ready()` when the new bundle serves.
    /// MONOTONIC_USEC lets systemd match this to the reload it asked for (needed by Type=notify-reload, 253+).
    public func reloading(status: String = "reloading model bundle") {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        deliver(["RELOADING=1", "MONOTONIC_USEC=\(usec)", Self.status(status)])
    }

    /// Free-form text shown by `systemctl status`.
    public func status(_ text: String) { deliver([Self.status(text)]) }

    // MARK: Watchdog

    /// Pings WATCHDOG=1 now and then every `watchdogInterval` while `isAlive()` holds; a wedged daemon whose
    /// check fails stops pinging and systemd restarts it after WatchdogSec. No-op without WATCHDOG_USEC.
    public func startWatchdog(isAlive: @escaping @Sendable () -> Bool = { true }) {
        guard let interval = watchdogInterval else { return }
        queue.sync {
            timer?.cancel()
            let source = DispatchSource.makeTimerSource(queue: queue)
            source.schedule(deadline: .now(), repeating: interval, leeway: .milliseconds(Int(interval * 100)))
            // Captures the wire, not self, so the timer never touches a notifier being deinitialised.
            source.setEventHandler { [wire] in
                if isAlive() { wire.deliver(["WATCHDOG=1"]) }
            }
            source.activate()
            timer = source
        }
        logger.info("systemd watchdog on", metadata: ["interval_seconds": "\(interval)"])
    }

    public func stopWatchdog() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    // MARK: Wire

    /// Sends one datagram of `KEY=VALUE` lines. Throws when systemd asked for notifications but the send
    /// failed; does nothing when NOTIFY_SOCKET is unset.
    public func send(_ assignments: [String]) throws { try wire.send(assignments) }

    private func deliver(_ assignments: [String]) { wire.deliver(assignments) }

    /// One status line; sd_notify fields are newline-separated, so newlines in the text become spaces.
    private static func status(_ text: String) -> String {
        "STATUS=" + text.replacingOccurrences(of: "\n", with: " ")
    }

    private static func parse(_ value: String) -> Destination? {
        let maxPath = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        if value.hasPrefix("@"), value.utf8.count <= maxPath {
            return .abstract(String(value.dropFirst()))
        }
        if value.hasPrefix("/"), value.utf8.count < maxPath {
            return .path(value)
        }
        return nil
    }
}

/// The socket side: where datagrams go and how they are sent. A value, so the watchdog timer can own a copy.
private struct Wire: Sendable {
    let destination: SystemdNotifier.Destination?
    let logger: Logger

    func send(_ assignments: [String]) throws {
        guard let destination else { return }
        let fd = try check("socket", socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        defer { close(fd) }
        var (address, length) = Self.address(destination)
        let message = assignments.joined(separator: "\n")
        _ = try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try message.withCString { text in
                    try check("sendto", sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), sa, length))
                }
            }
        }
    }

    /// Sends, and logs a failure instead of throwing: a lost notification must not take the daemon down.
    func deliver(_ assignments: [String]) {
        do { try send(assignments) } catch {
            logger.warning("systemd notification failed", metadata: ["message": "\(assignments)", "error": "\(error)"])
        }
    }

    /// sockaddr_un for the destination. Abstract names start with a NUL byte and are not NUL-terminated, so
    /// the length counts exactly the name's bytes.
    private static func address(_ destination: SystemdNotifier.Destination) -> (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes: [UInt8]
        switch destination {
        case .path(let path): bytes = Array(path.utf8) + [0]
        case .abstract(let name): bytes = [0] + Array(name.utf8)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return (address, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count))
    }
}
