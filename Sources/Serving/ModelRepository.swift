import Foundation

/// Where a served model stands. A model that failed to reload keeps serving its previous version and says why.
public enum ModelState: Sendable, Equatable {
    case loading
    case ready
    case failed(String)

    public var name: String {
        switch self {
        case .loading: return "loading"
        case .ready: return "ready"
        case .failed: return "failed"
        }
    }
}

/// One entry of the repository as the HTTP side reports it.
public struct ModelStatus: Sendable {
    /// The name requests use (`?model=NAME`, /v2/models/NAME).
    public var name: String
    public var state: ModelState
    /// What is known before the model loads: nothing but its name. Set once it has served.
    public var info: ModelInfo?
    /// Why the last reload was refused while the previous version kept serving.
    public var reloadError: String?
}

/// Why a request names no model the repository can serve.
public enum ModelLookupError: Error, Equatable, CustomStringConvertible {
    case unknown(String, served: [String])
    /// Several models are served, no `default_model` is set, and the request named none.
    case unnamed(served: [String])
    case notReady(String, ModelState)

    public var description: String {
        switch self {
        case .unknown(let name, let served):
            return "no model named '\(name)'; this server has: \(served.joined(separator: ", "))"
        case .unnamed(let served):
            return "this server has several models; name one with ?model=NAME: \(served.joined(separator: ", "))"
        case .notReady(let name, let state):
            if case .failed(let why) = state { return "model '\(name)' failed to load: \(why)" }
            return "model '\(name)' is \(state.name)"
        }
    }
}

/// Name -> served model: its state and, once loaded, its `ClipService` (its own batcher; every service shares the
/// one inference thread, so models take turns batch by batch). Entries are keyed by where they come from (a
/// bundle folder), so a reload that renames a model swaps it in one step. Thread-safe; loading happens elsewhere.
public final class ModelRepository: @unchecked Sendable {
    private struct Entry {
        var name: String
        var state: ModelState
        var service: ClipService?
        var reloadError: String?
    }

    /// Used when a request names no model and several are served.
    public let defaultModel: String?
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]  // by source key; guarded by lock

    public init(defaultModel: String? = nil) {
        self.defaultModel = defaultModel
    }

    /// The service for `name`, or for the only model (or `defaultModel`) when the request names none.
    public func service(named name: String?) throws(ModelLookupError) -> ClipService {
        let entries = lock.withLock { Array(self.entries.values) }
        let served = entries.map(\.name).sorted()
        let wanted: String
        if let name {
            wanted = name
        } else if let defaultModel {
            wanted = defaultModel
        } else if entries.count == 1 {
            wanted = entries[0].name
        } else {
            throw .unnamed(served: served)
        }
        guard let entry = entries.first(where: { $0.name == wanted }) else { throw .unknown(wanted, served: served) }
        guard let service = entry.service else { throw .notReady(wanted, entry.state) }
        return service
    }

    public var statuses: [ModelStatus] {
        lock.withLock {
            entries.values.map { ModelStatus(name: $0.name, state: $0.state, info: $0.service?.info,
                                             reloadError: $0.reloadError) }
        }.sorted { $0.name < $1.name }
    }

    /// Every service, for draining at shutdown.
    public var services: [ClipService] {
        lock.withLock { entries.values.compactMap(\.service) }
    }

    public var sourceKeys: Set<String> {
        lock.withLock { Set(entries.keys) }
    }

    /// A model whose first load has started.
    public func loading(_ key: String, name: String) {
        lock.withLock { entries[key] = Entry(name: name, state: .loading) }
    }

    /// Puts `service` in place of whatever `key` served; returns the service it replaced, for the caller to retire.
    @discardableResult
    public func serve(_ key: String, _ service: ClipService) -> ClipService? {
        lock.withLock {
            let previous = entries[key]?.service
            entries[key] = Entry(name: service.info.name, state: .ready, service: service)
            return previous
        }
    }

    /// A load failed. A model that still serves keeps serving and remembers why; one that never loaded is failed.
    public func failed(_ key: String, name: String, reason: String) {
        lock.withLock {
            if entries[key]?.service != nil {
                entries[key]?.reloadError = reason
            } else {
                entries[key] = Entry(name: name, state: .failed(reason))
            }
        }
    }

    /// Takes `key` out of service; returns its service, for the caller to retire.
    @discardableResult
    public func remove(_ key: String) -> ClipService? {
        lock.withLock { entries.removeValue(forKey: key)?.service }
    }
}
