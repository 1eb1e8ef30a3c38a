import Foundation
import Logging
import SystemIntegration
import XCTest

/// The exact datagrams the daemon sends to systemd, read back from a real AF_UNIX socket.
final class SystemdNotifierTests: XCTestCase {
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func testLifecycleMessagesOnPathSocket() throws {
        let systemd = try DatagramListener()
        let notifier = SystemdNotifier(logger: logger, environment: ["NOTIFY_SOCKET": systemd.address])
        XCTAssertEqual(notifier.destination, .path(systemd.address))

        notifier.ready()
        XCTAssertEqual(systemd.receive(), "READY=1\nSTATUS=serving")
        notifier.status("loaded\nbundle demo")
        XCTAssertEqual(systemd.receive(), "STATUS=loaded bundle demo")
        notifier.stopping()
        XCTAssertEqual(systemd.receive(), "STOPPING=1\nSTATUS=draining")
    }

    func testReloadingCarriesMonotonicTimestamp() throws {
        let systemd = try DatagramListener()
        let notifier = SystemdNotifier(logger: logger, environment: ["NOTIFY_SOCKET": systemd.address])
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        notifier.reloading()
        let lines = try XCTUnwrap(systemd.receive()).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0], "RELOADING=1")
        XCTAssertEqual(lines[2], "STATUS=reloading model bundle")
        let usec = try XCTUnwrap(UInt64(lines[1].replacingOccurrences(of: "MONOTONIC_USEC=", with: "")))
        let before = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        XCTAssert(usec >= before && usec < before + 5_000_000, "MONOTONIC_USEC \(usec) vs clock \(before)")
    }

    func testAbstractNamespaceSocket() throws {
        let systemd = try DatagramListener(abstract: true)
        let notifier = SystemdNotifier(logger: logger, environment: ["NOTIFY_SOCKET": systemd.address])
        XCTAssertEqual(notifier.destination, .abstract(String(systemd.address.dropFirst())))
        notifier.ready(status: "ok")
        XCTAssertEqual(systemd.receive(), "READY=1\nSTATUS=ok")
    }

    /// The default initialiser reads the process environment, as the daemon uses it.
    func testReadsProcessEnvironment() throws {
        let systemd = try DatagramListener()
        setenv("NOTIFY_SOCKET", systemd.address, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        SystemdNotifier(logger: logger).ready()
        XCTAssertEqual(systemd.receive(), "READY=1\nSTATUS=serving")
    }

    func testNoOpWithoutSystemd() throws {
        let notifier = SystemdNotifier(logger: logger, environment: ["WATCHDOG_USEC": "1000000"])
        XCTAssertNil(notifier.destination)
        XCTAssertNil(notifier.watchdogInterval, "no watchdog without a socket to ping")
        XCTAssertNoThrow(try notifier.send(["READY=1"]))
    }

    func testRejectsWhatSdNotifyRejects() {
        func destination(_ value: String) -> SystemdNotifier.Destination? {
            SystemdNotifier(logger: logger, environment: ["NOTIFY_SOCKET": value]).destination
        }
        XCTAssertNil(destination("relative/notify"))
        XCTAssertNil(destination("/" + String(repeating: "x", count: 200)))
        XCTAssertEqual(destination("/run/systemd/notify"), .path("/run/systemd/notify"))
        XCTAssertEqual(destination("@name"), .abstract("name"))
    }

    func testSendToMissingSocketThrowsTypedError() {
        let notifier = SystemdNotifier(logger: logger, environment: ["NOTIFY_SOCKET": "/nonexistent/avmae-notify"])
        XCTAssertThrowsError(try notifier.send(["READY=1"])) { error in
            let failure = error as? SystemCallError
            XCTAssertEqual(failure?.call, "sendto")
            XCTAssertEqual(failure?.errno, ENOENT)
            XCTAssertEqual(failure?.function, "send(_:)")
        }
    }

    func testWatchdogIntervalIsHalfOfWatchdogUsecForThisPid() {
        let base = ["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"]
        XCTAssertEqual(SystemdNotifier(logger: logger, environment: base).watchdogInterval, 15)
        var mine = base
        mine["WATCHDOG_PID"] = "\(getpid())"
        XCTAssertEqual(SystemdNotifier(logger: logger, environment: mine).watchdogInterval, 15)
        var other = base
        other["WATCHDOG_PID"] = "\(getpid() + 1)"
        XCTAssertNil(SystemdNotifier(logger: logger, environment: other).watchdogInterval)
        XCTAssertNil(SystemdNotifier(logger: logger, environment: base.merging(["WATCHDOG_USEC": "0"]) { $1 })
            .watchdogInterval)
    }

    func testWatchdogPingsUntilStopped() throws {
        let systemd = try DatagramListener()
        let notifier = SystemdNotifier(logger: logger,
                                       environment: ["NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"])
        XCTAssertEqual(notifier.watchdogInterval, 0.1)
        let start = Date()
        notifier.startWatchdog()
        for _ in 0..<4 { XCTAssertEqual(systemd.receive(timeout: 2), "WATCHDOG=1") }
        // First ping at once, then every 0.1 s: four pings take about 0.3 s, well under WATCHDOG_USEC each.
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.25)
        notifier.stopWatchdog()
        while systemd.receive(timeout: 0.05) != nil {}  // a ping already in flight when stopped
        XCTAssertNil(systemd.receive(timeout: 0.4), "pings after stopWatchdog")
    }

    func testWatchdogSilentWhileUnhealthy() throws {
        let systemd = try DatagramListener()
        let notifier = SystemdNotifier(logger: logger,
                                       environment: ["NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "100000"])
        notifier.startWatchdog(isAlive: { false })
        XCTAssertNil(systemd.receive(timeout: 0.4), "a wedged daemon must stop pinging so systemd restarts it")
        notifier.stopWatchdog()
    }
}
