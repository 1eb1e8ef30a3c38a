import Dispatch
import Foundation
import Logging
import Metrics
import Serving

/// The running server: HTTP first (so /healthz answers at once), then the model loads and warms up on the
/// loader queue, then /readyz turns ready. `shutdown` is the drain path for all of it, the loader included.
public final class Daemon: Sendable {
    /// Loads the bundle named in the configuration; runs on the loader queue, may take seconds.
    public typealias Loader = @Sendable (ServerConfig) throws -> (InferenceBackend, ClipDecoding)

    public let config: ServerConfig
    public let lifecycle: Lifecycle
    private let slot = ServiceSlot()
    private let http: MHDServer
    private let router: APIRouter
    private let loader: Loader
    private let loaderQueue = DispatchQueue(label: "avmae.loader")
    /// The one queue that runs model calls, shared by the old and new model during a reload.
    private let inferenceQueue = InferenceThread()
    private let reloads: (ok: Counter, failed: Counter)
    private let logger: Logger
    private let metricsFactory: MetricsFactory
    private let servingMetrics: ServingMetrics

    /// `apiKeys`: when given, every path outside `config.authExemptPaths` needs one of them as a bearer token.
    public init(config: ServerConfig, logger: Logger, metricsFactory: MetricsFactory, exposition: MetricsExposition,
                apiKeys: APIKeys? = nil, loader: @escaping Loader) {
        self.config = config
        self.loader = loader
        self.logger = logger
        self.metricsFactory = metricsFactory
        let servingMetrics = ServingMetrics(factory: metricsFactory)
        self.servingMetrics = servingMetrics
        reloads = (Counter(label: "avmae_model_reloads_total", dimensions: [("result", "ok")], factory: metricsFactory),
                   Counter(label: "avmae_model_reloads_total", dimensions: [("result", "failed")], factory: metricsFactory))
        self.lifecycle = Lifecycle(logger: logger) { state in
            servingMetrics.setReady(state == .ready)
        }
        servingMetrics.setReady(false)
        router = APIRouter(lifecycle: lifecycle, slot: slot, exposition: exposition,
                           maxBodyBytes: config.maxBodyBytes,
                           authentication: apiKeys.map { .init(keys: $0, exemptPaths: config.authExemptPaths.paths) },
                           logger: logger, metricsFactory: metricsFactory)
        http = MHDServer(handler: router, limits: .init(
            threads: config.httpThreads, connectionLimit: config.connectionLimit,
            connectionTimeoutSeconds: config.connectionTimeoutSeconds,
            connectionMemoryBytes: config.connectionMemoryBytes, maxBodyBytes: config.maxBodyBytes))
    }

    /// Starts listening and begins loading the model in the background. Returns the bound port.
    /// `listenSocket` is a socket inherited from systemd's socket activation; nil binds `host`/`port`.
    /// `tls` switches the listener to HTTPS.
    public func start(listenSocket: Int32? = nil, tls: TLSCredentials? = nil) throws -> Int {
        let port = try http.start(host: config.host, port: config.port, listenSocket: listenSocket, tls: tls)
        logger.info("listening", metadata: [
            "host": "\(config.host)", "port": "\(port)", "inherited_fd": "\(listenSocket.map { "\($0)" } ?? "none")",
            "tls": "\(tls != nil)",
        ])
        loaderQueue.async { self.loadAndWarm() }
        return port
    }

    /// Called with `true` once the model is ready (for systemd's READY=1), or `false` if loading failed.
    public func whenLoaded(_ body: @escaping @Sendable (Bool) -> Void) {
        loaderQueue.async { body(self.lifecycle.state == .ready) }
    }

    /// SIGHUP: loads the bundle again from the same path, warms it up, and swaps it in; requests already
    /// admitted finish on the old model, which is freed after them. A bundle that fails to load or warm up is
    /// refused and the old model keeps serving. /readyz stays 200 throughout. `done` gets whether the new
    /// model serves. Reloads run on the loader queue, one at a time, after any load in progress.
    public func reload(done: @escaping @Sendable (Bool) -> Void = { _ in }) {
        loaderQueue.async { done(self.reloadNow()) }
    }

    private func loadAndWarm() {
        do {
            let service = try loadService(warm: { self.lifecycle.move(to: .warming) })
            slot.service = service
            modelInfoGauge(service.info).record(1)
            lifecycle.move(to: .ready)
        } catch {
            logger.error("model failed to load", metadata: ["error": "\(error)", "bundle": "\(config.bundle ?? "")"])
            lifecycle.move(to: .loadFailed("\(error)"))
        }
    }

    private func reloadNow() -> Bool {
        guard lifecycle.state == .ready, let old = slot.service else {
            // Loading, warming or draining: that path owns the slot. After a failed first load the lifecycle
            // is terminal by design, so a fixed bundle needs a restart.
            logger.warning("reload ignored: the server is not serving a model", metadata: ["state": "\(lifecycle.state)"])
            return false
        }
        logger.info("reloading model bundle", metadata: ["bundle": "\(config.bundle ?? "")"])
        let service: ClipService
        do {
            service = try loadService(warm: {})
        } catch {
            logger.error("model reload failed; the previous model keeps serving", metadata: [
                "error": "\(error)", "bundle": "\(config.bundle ?? "")", "model": "\(old.info.name)",
            ])
            reloads.failed.increment()
            return false
        }
        slot.service = service
        modelInfoGauge(old.info).record(0)
        modelInfoGauge(service.info).record(1)
        reloads.ok.increment()
        logger.info("model reloaded", metadata: ["model": "\(service.info.name)", "previous": "\(old.info.name)"])
        let finished = old.retire(timeout: config.drainTimeoutSeconds)
        logger.info("previous model retired", metadata: ["model": "\(old.info.name)", "drained": "\(finished)"])
        return true
    }

    /// Loads the bundle, builds its serving core on the shared inference queue and runs one warm-up batch.
    /// `warm` runs between the two (the first load moves the lifecycle there).
    private func loadService(warm: () -> Void) throws -> ClipService {
        let start = Date()
        let (backend, decoder) = try loader(config)
        let info = backend.info
        logger.info("model loaded", metadata: [
            "model": "\(info.name)", "kind": "\(info.kind.rawValue)", "parameters": "\(info.parameterCount)",
            "compute": "\(info.compute)",
            "seconds": "\(Date().timeIntervalSince(start))",
        ])
        warm()
        var serving = ClipService.Configuration()
        serving.maxBatch = config.maxBatch
        serving.maxDelaySeconds = config.maxDelayMs / 1000
        serving.maxBatchSeconds = config.maxBatchSeconds
        serving.maxQueuedRows = config.maxQueue
        serving.requestTimeoutSeconds = config.requestTimeoutSeconds
        serving.decodeConcurrency = config.decodeThreads
        serving.maxPendingDecodes = config.maxPendingDecodes
        serving.retryAfterSeconds = config.retryAfterSeconds
        let service = ClipService(backend: backend, decoder: decoder, configuration: serving, lifecycle: lifecycle,
                                  inferenceQueue: inferenceQueue, logger: logger, metrics: servingMetrics)
        let warmStart = Date()
        try service.warmUp()
        logger.info("warm-up done", metadata: ["seconds": "\(Date().timeIntervalSince(warmStart))"])
        return service
    }

    private func modelInfoGauge(_ info: ModelInfo) -> Gauge {
        Gauge(label: "avmae_model_info", dimensions: [
            ("name", info.name), ("kind", info.kind.rawValue), ("label_set", info.labelSet.rawValue),
            ("modalities", info.modalities.map(\.rawValue).joined(separator: ",")),
            ("parameters", "\(info.parameterCount)"),
        ], factory: metricsFactory)
    }

    /// SIGTERM path: stop accepting, let in-flight requests finish (at most `drain_timeout_seconds`), close.
    /// Returns whether everything finished within the timeout.
    public func shutdown() -> Bool {
        let deadline = Date(timeIntervalSinceNow: config.drainTimeoutSeconds)
        lifecycle.move(to: .draining)
        http.quiesce()
        logger.info("draining", metadata: ["timeout_seconds": "\(config.drainTimeoutSeconds)"])
        // A load or warm-up still running must end first: the warm-up batch is inside OpenBLAS.
        let loaderDone = DispatchSemaphore(value: 0)
        loaderQueue.async { loaderDone.signal() }
        var drained = loaderDone.wait(timeout: .now() + config.drainTimeoutSeconds) == .success
        drained = (slot.service?.drain(timeout: max(0, deadline.timeIntervalSinceNow)) ?? true) && drained
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
