import Dispatch
import Foundation

/// Ctrl-C (SIGINT) or SIGTERM during a bulk run: the first one stops taking new files, lets the clips in flight
/// finish and records them, so the run ends cleanly and a rerun resumes where it stopped. A second one quits at
/// once; results.jsonl stays valid even then (lines are appended whole and fsynced).
///
/// Owner: the bulk command, for the run; the signal sources live on this object's queue.
final class BulkInterruption: @unchecked Sendable {
    private let queue = DispatchQueue(label: "avmae.bulk.signals")
    private let lock = NSLock()
    private var signal: Int32?  // guarded by lock
    private var sources: [DispatchSourceSignal] = []

    init(onFirst: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM] {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                let first = lock.withLock { () -> Bool in
                    defer { signal = signal ?? number }
                    return signal == nil
                }
                guard first else {
                    FileHandle.standardError.write(Data("\nstopped without waiting for the clips in flight\n".utf8))
                    _exit(128 + number)
                }
                onFirst(number)
            }
            source.activate()
            sources.append(source)
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// The first signal received, if any.
    var received: Int32? { lock.withLock { signal } }
}
