import XCTest

/// A test class whose tests share one real daemon: started once before the class's first test, stopped after
/// its last. Subclasses override `makeDaemon()` to start it with other settings or another bundle.
class SharedDaemonTestCase: XCTestCase {
    private static var daemons = [ObjectIdentifier: Result<RunningDaemon, Error>]()

    class func makeDaemon() throws -> RunningDaemon { try RunningDaemon() }

    override class func setUp() {
        daemons[ObjectIdentifier(self)] = Result { try makeDaemon() }
    }

    override class func tearDown() {
        if case .success(let daemon)? = daemons.removeValue(forKey: ObjectIdentifier(self)) {
            _ = daemon.terminateAndWait()
        }
    }

    /// Fails every test of the class with the start-up error when the daemon did not start.
    override func setUpWithError() throws {
        _ = try Self.daemons[ObjectIdentifier(type(of: self))]!.get()
    }

    var daemon: RunningDaemon { try! Self.daemons[ObjectIdentifier(type(of: self))]!.get() }

    var port: Int { daemon.port }
}
