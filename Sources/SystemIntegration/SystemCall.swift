import Foundation

/// A failed C call: its name, errno, and the Swift function that made it.
public struct SystemCallError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public let function: String

    public init(call: String, errno: Int32, function: String) {
        self.call = call
        self.errno = errno
        self.function = function
    }

    public var description: String { "\(call) failed in \(function): \(String(cString: strerror(errno)))" }
}

/// Every C return code in this target (and in DecodeIsolation) passes through here: -1 becomes a `SystemCallError`.
@discardableResult
public func check<T: BinaryInteger>(_ call: String, _ result: T, function: String = #function) throws -> T {
    guard result == -1 else { return result }
    throw SystemCallError(call: call, errno: errno, function: function)
}
