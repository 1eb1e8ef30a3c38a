import Dispatch
import Foundation
import HTTPServer
import Logging
import Metrics
import Serving

/// The running server: HTTP first (so /healthz answers at once), then every model loads and warms up on the
/// loader queue, then /readyz turns ready. `reload` rescans the configured bundles; `shutdown` drains it all.
final class Daemon: Sendable {
    /// Builds one model's backend and decoder; runs on the loader queue, may take seconds.
    typealias Loader = @Sendable (ModelSource, _ version: String) throws -> (InferenceBackend, ClipDecoding)

    let config: ServerConfig
    let lifecycle: Lifecycle
    let models: ModelRepository
    private let http: MHDServer
    private let router: APIRouter
    private let loader: Loader
    private let loaderQueue = DispatchQueue(label: "avmae.loader")
    /// The one thread that runs model calls, for every model and across reloads: each model's batcher has at most
    /// one batch on it, so models take turns batch by batch and only one is inside BLAS at a time.
    private let inferenceQueue = InferenceThread()
    /// Models being retired after a reload or removal wait for their requests here, off the loader queue.
    private let retireQueue = DispatchQueue(label: "avmae.retire", attributes: .concurrent)
    private let logger: Logger
    private let metricsFactory: MetricsFactory

    /// `apiKeys`: when given, every path outside `config.authExemptPaths` needs one of them as a bearer token.
    init(config: ServerConfig, logger: Logger, metricsFactory: MetricsFactory, exposition: MetricsExposition,
         apiKeys: APIKeys? = nil, loader: @escaping Loader) {
        self.config = config
        self.loader = loader
        self.logger = logger
        self.metricsFactory = metricsFactory
        self.lifecycle = Lifecycle(logger: logger)
        self.models = ModelRepository(defaultModel: config.defaultModel)
        router = APIRouter(lifecycle: lifecycle, models: models, exposition: exposition,
                           maxBodyBytes: config.maxBodyBytes,
                           streamBodyLimit: BodyLimit(maxBytes: config.streamMaxBodyBytes,
                                                      spoolAboveBytes: config.streamSpoolBytes),
                           authentication: apiKeys.map { .init(keys: $0, exemptPaths: config.authExemptPaths.paths) },
                           cors: config.corsAllowedOrigins.origins.isEmpty
                               ? nil : CORSPolicy(allowedOrigins: config.corsAllowedOrigins.origins),
                           logger: logger, metricsFactory: metricsFactory)
        http = MHDServer(handler: router, limits: .init(
            threads: config.httpThreads, connectionLimit: config.connectionLimit,
            connectionTimeoutSeconds: config.connectionTimeoutSeconds,
            connectionMemoryBytes: config.connectionMemoryBytes, maxBodyBytes: config.maxBodyBytes))
    }

    /// Starts listening and begins loading the models in the background. Returns the bound port.
    /// `listenSocket` is a socket inherited from systemd's socket activation; nil binds `host`/`port`.
    /// `tls` switches the listener to HTTPS.
    func start(listenSocket: Int32? = nil, tls: TLSCredentials? = nil) throws -> Int {
        let port = try http.start(host: config.host, port: config.port, listenSocket: listenSocket, tls: tls)
        logger.info("listening", metadata: [
            "host": "\(config.host)", "port": "\(port)", "inherited_fd": "\(listenSocket.map { "\($0)" } ?? "none")",
            "tls": "\(tls != nil)",
        ])
        loaderQueue.async { self.loadAll() }
        return port
    }

    /// Called with `true` once the first load pass has a model serving (for systemd's READY=1), else `false`.
    func whenLoaded(_ body: @escaping @Sendable (Bool) -> Void) {
        loaderQueue.async { body(self.lifecycle.state == .ready) }
    }

    /// SIGHUP: rescans the configured bundles, one model at a time. A new bundle loads; a removed one stops
    /// taking requests and is freed after the ones it admitted; a bundle whose version changed loads, warms up
    /// and is swapped in, with requests already admitted finishing on the old one. A bundle that fails to load or
    /// warm up is refused and its previous version keeps serving. /readyz stays 200 throughout. `done` gets
    /// whether every change took effect. Reloads run on the loader queue, after any load in progress.
    func reload(done: @escaping @Sendable (Bool) -> Void = { _ in }) {
        loaderQueue.async { done(self.reloadNow()) }
    }

    /// The first pass: the lifecycle turns ready once every bundle has been tried and at least one serves.
    private func loadAll() {
        let sources: [ModelSource]
        do { sources = try ModelSource.scan(config) } catch {
            logger.error("no model to load", metadata: ["error": "\(error)"])
            lifecycle.move(to: .loadFailed("\(error)"))
            return
        }
        for source in sources { models.loading(source.key, name: source.name) }
        var failures: [String] = []
        for source in sources {
            do {
                let version = try BundleDigest.version(of: source.directory)
                models.serve(source.key, try loadService(source, version: version) {
                    self.lifecycle.move(to: .warming)
                })
            } catch {
                logger.error("model failed to load", metadata: [
                    "model": "\(source.name)", "bundle": "\(source.directory.path)", "error": "\(error)",
                ])
                models.failed(source.key, name: source.name, reason: "\(error)")
                failures.append(sources.count == 1 ? "\(error)" : "\(source.name): \(error)")
            }
        }
        if models.services.isEmpty {
            lifecycle.move(to: .loadFailed(failures.isEmpty ? "the model repository has no bundle" : failures.joined(separator: "; ")))
        } else {
            lifecycle.move(to: .warming)  // a no-op unless the models were all loaded before
            lifecycle.move(to: .ready)
        }
    }

    private func reloadNow() -> Bool {
        guard lifecycle.state == .ready else {
            // Loading, warming or draining: that path owns the models. After a failed first load the lifecycle
            // is terminal by design, so a fixed bundle needs a restart.
            logger.warning("reload ignored: the server is not serving", metadata: ["state": "\(lifecycle.state)"])
            return false
        }
        let sources: [ModelSource]
        do { sources = try ModelSource.scan(config) } catch {
            logger.error("model reload failed; every model keeps serving", metadata: ["error": "\(error)"])
            return false
        }
        let wanted = Set(sources.map(\.key))
        for key in models.sourceKeys.subtracting(wanted) {
            guard let old = models.remove(key) else { continue }
            logger.info("model removed from the repository", metadata: ["model": "\(old.info.name)"])
            retire(old)
        }
        var allApplied = true
        let current = Dictionary(models.statuses.compactMap { status in status.info.map { (status.name, $0) } },
                                 uniquingKeysWith: { first, _ in first })
        for source in sources {
            allApplied = reload(source, current: current) && allApplied
        }
        return allApplied
    }

    /// Loads `source` if it is new or its version changed; returns false if that failed.
    private func reload(_ source: ModelSource, current: [String: ModelInfo]) -> Bool {
        let serving = current[source.name]
        let version: String
        do { version = try BundleDigest.version(of: source.directory) } catch {
            return refused(source, error, previous: serving)
        }
        if serving?.version == version {
            logger.info("model unchanged", metadata: ["model": "\(source.name)", "version": "\(version)"])
            return true
        }
        let isNew = !models.sourceKeys.contains(source.key)
        if isNew { models.loading(source.key, name: source.name) }
        logger.info("loading model bundle", metadata: [
            "model": "\(source.name)", "bundle": "\(source.directory.path)", "version": "\(version)",
        ])
        let service: ClipService
        do { service = try loadService(source, version: version, warm: {}) } catch {
            return refused(source, error, previous: serving)
        }
        let previous = models.serve(source.key, service)
        Counter(label: "avmae_model_reloads_total", dimensions: [("model", source.name), ("result", "ok")],
                factory: metricsFactory).increment()
        logger.info(isNew ? "model added" : "model reloaded", metadata: [
            "model": "\(source.name)", "version": "\(version)",
            "previous": "\(previous.map { "\($0.info.name) \($0.info.version)" } ?? "none")",
        ])
        if let previous { retire(previous) }
        return true
    }

    private func refused(_ source: ModelSource, _ error: Error, previous: ModelInfo?) -> Bool {
        logger.error(previous == nil ? "model failed to load" : "model reload failed; the previous model keeps serving",
                     metadata: [
                        "model": "\(source.name)", "bundle": "\(source.directory.path)", "error": "\(error)",
                        "serving": "\(previous?.version ?? "nothing")",
                     ])
        models.failed(source.key, name: source.name, reason: "\(error)")
        Counter(label: "avmae_model_reloads_total", dimensions: [("model", source.name), ("result", "failed")],
                factory: metricsFactory).increment()
        return false
    }

    /// A replaced or removed model finishes what it admitted, then goes (its last reference is here).
    private func retire(_ service: ClipService) {
        modelInfoGauge(service.info).record(0)
        ServingMetrics(factory: metricsFactory, model: service.info.name).setReady(false)
        retireQueue.async { [config, logger] in
            let finished = service.retire(timeout: config.drainTimeoutSeconds)
            logger.info("previous model retired", metadata: [
                "model": "\(service.info.name)", "version": "\(service.info.version)", "drained": "\(finished)",
            ])
        }
    }

    /// Loads a bundle, builds its serving core on the shared inference thread and runs its warm-up.
    /// `warm` runs between the two (the first load moves the lifecycle there).
    private func loadService(_ source: ModelSource, version: String, warm: () -> Void) throws -> ClipService {
        let start = Date()
        let (backend, decoder) = try loader(source, version)
        let info = backend.info
        logger.info("model loaded", metadata: [
            "model": "\(info.name)", "version": "\(info.version)", "kind": "\(info.kind.rawValue)",
            "parameters": "\(info.parameterCount)", "compute": "\(info.compute)",
            "seconds": "\(Date().timeIntervalSince(start))",
        ])
        warm()
        let metrics = ServingMetrics(factory: metricsFactory, model: info.name)
        let service = ClipService(backend: backend, decoder: decoder, configuration: config.serving, lifecycle: lifecycle,
                                  inferenceQueue: inferenceQueue, logger: logger, metrics: metrics)
        let warmStart = Date()
        try service.warmUp()
        logger.info("warm-up done", metadata: ["model": "\(info.name)", "seconds": "\(Date().timeIntervalSince(warmStart))"])
        metrics.setReady(true)
        modelInfoGauge(info).record(1)
        return service
    }

    private func modelInfoGauge(_ info: ModelInfo) -> Gauge {
        Gauge(label: "avmae_model_info", dimensions: [
            ("name", info.name), ("version", info.version), ("kind", info.kind.rawValue),
            ("label_set", info.labelSet.rawValue), ("modalities", info.modalities.map(\.rawValue).joined(separator: ",")),
            ("parameters", "\(info.parameterCount)"),
        ], factory: metricsFactory)
    }

    /// SIGTERM path: stop accepting, let in-flight requests finish (at most `drain_timeout_seconds`), close.
    /// Returns whether everything finished within the timeout.
    func shutdown() -> Bool {
        let deadline = Date(timeIntervalSinceNow: config.drainTimeoutSeconds)
        lifecycle.move(to: .draining)
        http.quiesce()
        logger.info("draining", metadata: ["timeout_seconds": "\(config.drainTimeoutSeconds)"])
        // A load or warm-up still running must end first: the warm-up batch is inside OpenBLAS.
        let loaderDone = DispatchSemaphore(value: 0)
        loaderQueue.async { loaderDone.signal() }
        var drained = loaderDone.wait(timeout: .now() + config.drainTimeoutSeconds) == .success
        for service in models.services {
            ServingMetrics(factory: metricsFactory, model: service.info.name).setReady(false)
            drained = service.drain(timeout: max(0, deadline.timeIntervalSinceNow)) && drained
        }
        drained = http.waitUntilIdle(timeout: max(0, deadline.timeIntervalSinceNow)) && drained
        if !drained {
            // Out of time: whoever still waits gets a 503 now, since MHD cannot stop with suspended connections.
            let cut = http.answerSuspended(with: router.cutOff)
            logger.warning("drain timeout; answered waiting requests with 503", metadata: ["requests": "\(cut)"])
            _ = http.waitUntilIdle(timeout: 2)
        }
        http.stop()
        lifecycle.move(to: .stopped)
        logger.info("stopped", metadata: ["drained": "\(drained)"])
        return drained
    }
}
