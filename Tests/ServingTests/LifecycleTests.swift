import Logging
import XCTest
import Serving

final class LifecycleTests: XCTestCase {
    func testTheHappyPathAndTheReasonsReportedOnTheWay() {
        let lifecycle = Lifecycle(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        XCTAssertEqual(lifecycle.state.notReadyReason, .loading)
        XCTAssertTrue(lifecycle.move(to: .warming))
        XCTAssertEqual(lifecycle.state.notReadyReason, .warming)
        XCTAssertTrue(lifecycle.move(to: .ready))
        XCTAssertNil(lifecycle.state.notReadyReason)
        XCTAssertTrue(lifecycle.move(to: .draining))
        XCTAssertEqual(lifecycle.state.notReadyReason, .draining)
        XCTAssertTrue(lifecycle.move(to: .stopped))
    }

    func testIllegalTransitionsAreRefused() {
        let lifecycle = Lifecycle(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        XCTAssertFalse(lifecycle.move(to: .ready), "ready before warm-up")
        XCTAssertTrue(lifecycle.move(to: .loadFailed("no config.json")))
        XCTAssertEqual(lifecycle.state.notReadyReason, .loadFailed)
        XCTAssertFalse(lifecycle.move(to: .warming))
        XCTAssertTrue(lifecycle.move(to: .draining))
        XCTAssertFalse(lifecycle.move(to: .draining))
    }
}
