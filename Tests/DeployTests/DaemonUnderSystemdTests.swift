import Foundation
import XCTest

/// The real daemon as systemd runs it: a datagram socket in NOTIFY_SOCKET standing in for systemd, and
/// `systemd-socket-activate` standing in for avmae-serve.socket. Asserts the protocol the unit relies on.
final class DaemonUnderSystemdTests: XCTestCase {
    /// Type=notify: READY=1 only once /readyz is 200 (systemd orders dependants and `systemctl start`
    /// returns on it), STOPPING=1 on SIGTERM, then a clean exit 0 after the drain.
    func testReadyWhenWarmStoppingOnSigterm() throws {
        let systemd = try DatagramListener()
        let daemon = try ServeProcess(test: self, environment: ["NOTIFY_SOCKET": systemd.address])
        let port = try daemon.readPort()

        let ready = systemd.receive(until: Self.has("READY=1"), timeout: 120)
        XCTAssertNotNil(ready, "no READY=1; daemon log:\n\(daemon.log)")
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/readyz"), 200, "READY=1 sent before /readyz was ready")

        daemon.terminate()
        XCTAssertNotNil(systemd.receive(until: Self.has("STOPPING=1"), timeout: 10), "no STOPPING=1 after SIGTERM")
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.log)
    }

    /// ExecReload= (SIGHUP): RELOADING=1 with MONOTONIC_USEC when the reload starts, READY=1 once the rewritten
    /// bundle serves, and /readyz 200 throughout. The labels are rewritten first: a rescan reloads only a bundle
    /// whose version changed.
    func testReloadingThenReadyOnSighup() throws {
        let systemd = try DatagramListener()
        let daemon = try ServeProcess(test: self, environment: ["NOTIFY_SOCKET": systemd.address])
        let port = try daemon.readPort()
        XCTAssertNotNil(systemd.receive(until: Self.has("READY=1"), timeout: 120), daemon.log)

        let labels = daemon.bundle.appendingPathComponent("labels.csv")
        let original = try String(contentsOf: labels, encoding: .utf8)
        let rewritten = original.replacingOccurrences(of: "demo class 000", with: "demo class zero")
        XCTAssertNotEqual(rewritten, original, "the demo labels changed; rewrite another one")
        try rewritten.write(to: labels, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        let reloading = systemd.receive(until: Self.has("RELOADING=1"), timeout: 30)
        XCTAssertNotNil(reloading, "no RELOADING=1 after SIGHUP; log:\n\(daemon.log)")
        XCTAssertTrue(reloading?.contains("MONOTONIC_USEC=") ?? false)
        XCTAssertNotNil(systemd.receive(until: Self.has("READY=1"), timeout: 60), "no READY=1 after the reload")
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/readyz"), 200)
        XCTAssertTrue(daemon.log.contains("model reloaded"), daemon.log)
        daemon.terminate()
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.log)
    }

    /// WatchdogSec=: pings at half of WATCHDOG_USEC, or systemd kills the daemon as hung.
    func testWatchdogPingsAtHalfWatchdogUsec() throws {
        let systemd = try DatagramListener()
        let daemon = try ServeProcess(test: self, environment: ["NOTIFY_SOCKET": systemd.address,
                                                                "WATCHDOG_USEC": "1000000"])
        _ = try daemon.readPort()
        let start = Date()
        var pings = 0
        while pings < 4, Date().timeIntervalSince(start) < 30,
              systemd.receive(until: Self.has("WATCHDOG=1"), timeout: 30 - Date().timeIntervalSince(start)) != nil {
            pings += 1
        }
        XCTAssertEqual(pings, 4, "expected WATCHDOG=1 every 0.5 s; daemon log:\n\(daemon.log)")
        daemon.terminate()
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.log)
    }

    /// avmae-serve.socket: systemd owns the port and starts the daemon on the first connection, passing the
    /// listening socket as fd 3. That first connection waits in the backlog and is answered; the daemon's
    /// own --host/--port are not used.
    func testServesOnInheritedSocket() throws {
        let port = try Self.freePort()
        let systemd = try DatagramListener()
        let daemon = try ServeProcess(test: self, environment: ["NOTIFY_SOCKET": systemd.address],
                                      socketActivation: "127.0.0.1:\(port)")
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/healthz", timeout: 20), 200,
                       "first connection not answered on the inherited socket; log:\n\(daemon.log)")
        XCTAssertNotNil(systemd.receive(until: Self.has("READY=1"), timeout: 120), daemon.log)
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/readyz"), 200)
        daemon.terminate()
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.log)
    }

    private static func has(_ line: String) -> (String) -> Bool {
        { $0.split(separator: "\n").contains(Substring(line)) }
    }

    /// A port nobody listens on right now (bind to 0, read it back, close).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw POSIXError(.init(rawValue: errno)!) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// `avmae-serve serve` on a fresh demo bundle, started directly or under systemd-socket-activate (which
/// execs into the daemon, so `pid` is the daemon either way).
///
/// Spawned with posix_spawn rather than Foundation's Process: Process watches each child through a socket
/// the child inherits, and systemd-socket-activate closes every inherited descriptor before exec; Process
/// then takes the still-running daemon for exited and blocks in waitpid, stalling every later Process.
final class ServeProcess {
    let pid: pid_t
    let bundle: URL
    private let stdout: FileHandle
    private let stderrFile: URL
    private var exitStatus: Int32?

    init(test: XCTestCase, environment: [String: String], socketActivation address: String? = nil) throws {
        let binary = try Commands.avmaeServe()
        let scratch = try Commands.scratch(test)
        bundle = scratch.appendingPathComponent("demo")
        let made = try Commands.run(binary.path, ["demo-bundle", "--out", bundle.path])
        XCTAssertEqual(made.status, 0, made.output)
        stderrFile = scratch.appendingPathComponent("stderr.log")

        let serve = [binary.path, "serve", "--bundle", bundle.path, "--host", "127.0.0.1", "--port", "0"]
        let arguments = address.map { address in
            ["/usr/bin/systemd-socket-activate", "-l", address]
                + environment.keys.sorted().map { "-E\($0)=\(environment[$0]!)" } + ["--"] + serve
        } ?? serve
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }

        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrFile.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        close(pipeEnds[1])
        stdout = FileHandle(fileDescriptor: pipeEnds[0], closeOnDealloc: true)
        guard spawned == 0 else { throw POSIXError(.init(rawValue: spawned)!) }
        self.pid = pid
        if address != nil { try waitForActivationSocket() }
        test.addTeardownBlock { [self] in
            if exitStatus == nil {
                kill(pid, SIGKILL)
                _ = waitForExit()
            }
        }
    }

    struct ExitedEarly: Error, CustomStringConvertible {
        let log: String
        var description: String { "daemon exited before listening:\n\(log)" }
    }

    var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// systemd-socket-activate says "Listening on ADDR as 3." once bound; connecting earlier is refused.
    private func waitForActivationSocket() throws {
        let deadline = Date(timeIntervalSinceNow: 10)
        while !log.contains("Listening on") {
            guard Date() < deadline else { throw ExitedEarly(log: log) }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// SIGTERM, as systemd's stop (and Kubernetes' after preStop) sends it.
    func terminate() { kill(pid, SIGTERM) }

    /// The exit code, or 128 + signal when killed.
    func waitForExit() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f
        exitStatus = code
        return code
    }

    /// The port from "avmae-serve listening on http://HOST:PORT", the daemon's first line on stdout.
    func readPort() throws -> Int {
        var buffer = Data()
        while true {
            let chunk = stdout.availableData
            guard !chunk.isEmpty else { throw ExitedEarly(log: log) }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                return port
            }
        }
    }
}
