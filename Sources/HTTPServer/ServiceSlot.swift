import Foundation
import Serving

/// Where the serving core appears once the model has loaded; the HTTP side starts before that so /healthz
/// and /readyz answer during loading.
public final class ServiceSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var current: ClipService?  // guarded by lock

    public init() {}

    public var service: ClipService? {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }
}
