import Foundation
import XCTest

/// The worker sandbox from inside: `avmae-serve decode-worker --probe NAME` enters it exactly as a worker does and
/// tries one thing. Refused calls must fail with the errno the filter gives them; starting a program must kill.
final class SandboxTests: XCTestCase {
    func testOpeningAFileFailsWithEACCES() throws {
        XCTAssertEqual(try WorkerBinary.probe("open"), .exited(0, output: "open: EACCES"))
    }

    func testMakingASocketFailsWithEPERM() throws {
        XCTAssertEqual(try WorkerBinary.probe("socket"), .exited(0, output: "socket: EPERM"))
    }

    func testMappingExecutableMemoryFailsWithEPERM() throws {
        XCTAssertEqual(try WorkerBinary.probe("mmap-exec"), .exited(0, output: "mmap-exec: EPERM"))
    }

    func testForkingFailsWithEPERM() throws {
        XCTAssertEqual(try WorkerBinary.probe("fork"), .exited(0, output: "fork: EPERM"))
    }

    func testStartingAProgramKillsTheWorkerWithSIGSYS() throws {
        XCTAssertEqual(try WorkerBinary.probe("exec"), .signalled(SIGSYS))
    }

    /// glibc tries clone3 first; the filter answers ENOSYS so it falls back to clone, which is allowed for threads.
    func testThreadsStillWork() throws {
        XCTAssertEqual(try WorkerBinary.probe("thread"), .exited(0, output: "thread: ok"))
    }
}
