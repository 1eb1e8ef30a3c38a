import Foundation
import SystemIntegration
import XCTest

final class ListenFDsTests: XCTestCase {
    private let pid = getpid()

    func testDescriptorsFromEnvironment() throws {
        XCTAssertEqual(try ListenFDs.descriptors(environment: [:], pid: pid), [])
        XCTAssertEqual(try ListenFDs.descriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "\(pid)"], pid: pid), [3])
        XCTAssertEqual(try ListenFDs.descriptors(environment: ["LISTEN_FDS": "2", "LISTEN_PID": "\(pid)"], pid: pid), [3, 4])
        // Meant for another process (inherited through fork/exec): not ours to use.
        XCTAssertEqual(try ListenFDs.descriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "\(pid + 1)"], pid: pid), [])
    }

    func testMalformedVariablesAreErrors() {
        XCTAssertThrowsError(try ListenFDs.descriptors(environment: ["LISTEN_FDS": "one", "LISTEN_PID": "\(pid)"], pid: pid)) {
            XCTAssertEqual($0 as? ListenFDs.ActivationError, .malformed(variable: "LISTEN_FDS", value: "one"))
        }
        XCTAssertThrowsError(try ListenFDs.descriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "x"], pid: pid)) {
            XCTAssertEqual($0 as? ListenFDs.ActivationError, .malformed(variable: "LISTEN_PID", value: "x"))
        }
    }

    func testServesExactlyOneSocket() {
        XCTAssertThrowsError(try ListenFDs.inheritedSocket(environment: ["LISTEN_FDS": "2", "LISTEN_PID": "\(pid)"], pid: pid)) {
            XCTAssertEqual($0 as? ListenFDs.ActivationError, .tooMany(2))
        }
        XCTAssertNil(try ListenFDs.inheritedSocket(environment: [:], pid: pid))
    }

    func testListeningStreamCheck() throws {
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(tcp) }
        XCTAssertThrowsError(try ListenFDs.requireListeningStream(tcp), "bound-less, not listening") {
            XCTAssertEqual($0 as? ListenFDs.ActivationError, .notListeningStream(fd: tcp))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tcp, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(tcp, 8), 0)
        XCTAssertNoThrow(try ListenFDs.requireListeningStream(tcp))

        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        XCTAssertThrowsError(try ListenFDs.requireListeningStream(udp))
        XCTAssertThrowsError(try ListenFDs.requireListeningStream(-1)) {
            XCTAssertEqual(($0 as? SystemCallError)?.errno, EBADF)
        }
    }
}
