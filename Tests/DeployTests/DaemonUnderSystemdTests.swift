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

        daemon.process.terminate()
        XCTAssertNotNil(systemd.receive(until: Self.has("STOPPING=1"), timeout: 10), "no STOPPING=1 after SIGTERM")
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0, daemon.log)
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
        daemon.process.terminate()
        daemon.process.waitUntilExit()
    }

    /// avmae-serve.socket: systemd owns the port and starts the daemon on the first connection, passing the
    /// listening socket as fd 3. That first connection waits in the backlog and is answered; the daemon's
    /// own --host/--port are not used.
    func testServesOnInheritedSocket() throws {
        let port = try Self.freePort()
        let systemd = try DatagramListener()
        let daemon = try ServeProcess(test: self, environment: ["NOTIFY_SOCKET": systemd.address],
                                      socketActivation: "127.0.0.1:\(port)")
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/healthz", timeout: 60), 200,
                       "first connection not answered on the inherited socket; log:\n\(daemon.log)")
        XCTAssertNotNil(systemd.receive(until: Self.has("READY=1"), timeout: 120), daemon.log)
        XCTAssertEqual(try Commands.httpStatus(port: port, path: "/readyz"), 200)
        daemon.process.terminate()
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0, daemon.log)
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
/// execs into the daemon, so `process` is the daemon either way).
final class ServeProcess {
    let process = Process()
    private let stdout = Pipe()
    private let stderrFile: URL

    init(test: XCTestCase, environment: [String: String], socketActivation address: String? = nil) throws {
        let binary = try Commands.avmaeServe()
        let scratch = try Commands.scratch(test)
        let bundle = scratch.appendingPathComponent("demo")
        let made = try Commands.run(binary.path, ["demo-bundle", "--out", bundle.path])
        XCTAssertEqual(made.status, 0, made.output)
        stderrFile = scratch.appendingPathComponent("stderr.log")
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)

        let serve = [binary.path, "serve", "--bundle", bundle.path, "--host", "127.0.0.1", "--port", "0"]
        if let address {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
            process.arguments = ["-l", address] + environment.keys.sorted().map { "-E\($0)=\(environment[$0]!)" } + ["--"] + serve
        } else {
            process.executableURL = binary
            process.arguments = Array(serve.dropFirst())
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
        test.addTeardownBlock { [process] in
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
    }

    struct ExitedEarly: Error, CustomStringConvertible {
        let log: String
        var description: String { "daemon exited before listening:\n\(log)" }
    }

    var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// The port from "avmae-serve listening on http://HOST:PORT", the daemon's first line on stdout.
    func readPort() throws -> Int {
        var buffer = Data()
        while true {
            let chunk = stdout.fileHandleForReading.availableData
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
