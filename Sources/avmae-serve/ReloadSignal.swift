import Dispatch
import Foundation

/// Calls `action` on every SIGHUP (`systemctl reload`, `kill -HUP`), on its own serial queue so two reload
/// requests never overlap here. SIGHUP is ignored first: its default action would end the process.
/// Owner: `Serve.run`, for the life of the process.
final class ReloadSignal: @unchecked Sendable {
    private let queue = DispatchQueue(label: "avmae.signals.reload")
    private let source: DispatchSourceSignal

    init(action: @escaping @Sendable () -> Void) {
        Foundation.signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        source.setEventHandler(handler: action)
        source.activate()
    }

    deinit { source.cancel() }
}
