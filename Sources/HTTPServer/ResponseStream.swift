import Foundation

/// A response body written while it is being sent: the producer appends (NDJSON lines, one per window), MHD's
/// content reader takes what is there. It holds only what was written and not yet sent.
///
/// Threading: `write`, `close` and `abort` from any thread; `read` and `connectionClosed` from MHDServer, on
/// MHD's threads. When the reader finds nothing to send it parks (MHDServer suspends the connection, so no
/// thread waits on it) and the next write or close wakes it.
public final class ResponseStream: @unchecked Sendable {
    enum Chunk {
        case bytes(Int)
        /// Nothing written yet; the reader parked, and will be woken.
        case parked
        case end
    }

    private enum State {
        case open
        /// Everything is written; the reader ends the body once it has sent what is left.
        case closed
        /// The connection went away before the body was complete.
        case gone
    }

    private let lock = NSLock()
    // Guarded by lock:
    private var pending: [UInt8] = []
    private var sentOffset = 0
    private var state = State.open
    private var wake: (() -> Void)?
    private var onGone: (@Sendable () -> Void)?

    public init() {}

    /// Called once if the client goes away before the body is complete, e.g. to stop the work that feeds it.
    public func onConnectionGone(_ action: @escaping @Sendable () -> Void) {
        let runNow: Bool = lock.withLock {
            guard case .gone = state else { onGone = action; return false }
            return true
        }
        if runNow { action() }
    }

    public func write(_ bytes: [UInt8]) {
        let waker: (() -> Void)? = lock.withLock {
            guard case .open = state else { return nil }
            pending += bytes
            return takeWaker()
        }
        waker?()
    }

    /// The body is complete.
    public func close() {
        let waker: (() -> Void)? = lock.withLock {
            guard case .open = state else { return nil }
            state = .closed
            return takeWaker()
        }
        waker?()
    }

    /// Shutdown cuts the body off: `last` (a final error line) goes out, then the body ends.
    func abort(with last: [UInt8]) {
        write(last)
        close()
    }

    /// Copies what is waiting into `buffer`. With nothing waiting, `park` runs under the stream's lock (so no
    /// write can slip in between) and `wake` is kept to be called, once, by the next write or close.
    func read(into buffer: UnsafeMutableRawBufferPointer, park: () -> Void, wake: @escaping () -> Void) -> Chunk {
        lock.withLock {
            let available = pending.count - sentOffset
            if available > 0 {
                let n = min(available, buffer.count)
                pending.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + sentOffset, byteCount: n) }
                sentOffset += n
                if sentOffset == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    sentOffset = 0
                }
                return .bytes(n)
            }
            guard case .open = state else { return .end }
            park()
            self.wake = wake
            return .parked
        }
    }

    /// MHD is done with the response: sent in full, or the connection failed first.
    func connectionClosed() {
        let action: (@Sendable () -> Void)? = lock.withLock {
            guard case .open = state else { return nil }
            state = .gone
            pending = []
            defer { onGone = nil }
            return onGone
        }
        action?()
    }

    /// Whether the producer has said everything it will.
    var isClosed: Bool {
        lock.withLock {
            if case .open = state { return false }
            return true
        }
    }

    private func takeWaker() -> (() -> Void)? {
        defer { wake = nil }
        return wake
    }
}
