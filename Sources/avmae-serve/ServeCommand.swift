import ArgumentParser
import AVMAE
import DecodeIsolation
import Dispatch
import Foundation
import HTTPServer
import Logging
import Metrics
import Prometheus
import Serving
import SystemIntegration

/// `avmae-serve serve`: the long-running HTTP daemon. This is the one place that bootstraps logging and
/// metrics; everything below gets a Logger and a MetricsFactory passed in.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model bundle over HTTP (see openapi.yaml).",
        discussion: """
            Settings come from, lowest first: defaults, --config FILE (JSON object of snake_case keys), \
            AVMAE_* environment variables (AVMAE_MAX_BATCH=8), then flags. --set key=value reaches any setting.
            """)

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Model bundle folder.") var bundle: String?
    @Option(help: "Address to listen on.") var host: String?
    @Option(help: "Port to listen on (0 = any free port).") var port: Int?
    @Option(help: "Rows per model call; 1 turns batching off.") var maxBatch: Int?
    @Option(help: "Longest a row waits for a fuller batch, in ms.") var maxDelayMs: Double?
    @Option(help: "Rows allowed to wait before 503.") var maxQueue: Int?
    @Option(help: "libmicrohttpd polling threads.") var httpThreads: Int?
    @Option(help: "Per-request deadline in the queue, in s.") var requestTimeoutSeconds: Double?
    @Option(help: "Longest shutdown waits for in-flight requests, in s.") var drainTimeoutSeconds: Double?
    @Option(help: "Largest accepted body, in bytes.") var maxBodyBytes: Int?
    @Option(help: "OpenBLAS threads for inference.") var blasThreads: Int?
    @Option(help: "Encoder precision: fp32 (default), int8 or bf16 (where the CPU runs it fast).") var precision: String?
    @Option(help: "Decode uploads in sandboxed worker processes (process) or in the daemon (none).") var decodeIsolation: String?
    @Option(help: "File of API keys, one per line; clients then send 'Authorization: Bearer <key>'.") var apiKeyFile: String?
    @Option(help: "PEM certificate (chain) for HTTPS; needs --tls-key.") var tlsCert: String?
    @Option(help: "Unencrypted PEM private key for HTTPS; needs --tls-cert.") var tlsKey: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(name: .customLong("set"), help: "Any setting, as key=value (repeatable).") var settings: [String] = []

    func run() throws {
        let kernel = try KernelCheck.run()
        let config: ServerConfig
        do {
            config = try ServerConfig.load(file: self.config, environment: ProcessInfo.processInfo.environment,
                                           flags: try flags())
        } catch let error as ServerConfig.ConfigError {
            throw ValidationError(error.description)
        }
        // A precision this CPU (or this unit's sandbox) cannot run fast is refused before anything starts.
        do { try ComputeEngine.checkAvailable(config.precision) } catch let error as ComputeError {
            throw ValidationError(error.description)
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        let factory = MetricsExposition.makeFactory(registry: registry)
        MetricsSystem.bootstrap(factory)
        let logger = Logger(label: "avmae-serve")
        logger.info("configuration", metadata: ["config": "\(config)"])
        // Process-global, like the logging and metrics bootstrap, so it is set here and nowhere below.
        if let threads = config.blasThreads { BLAS.threads = threads }
        let compute = kernel.info(precision: config.precision)
        logger.info("compute", metadata: .init(uniqueKeysWithValues: compute.fields.map { ($0, .string($1)) }))
        if let warning = kernel.warning { logger.warning("slow BLAS kernel", metadata: ["reason": "\(warning)"]) }
        Gauge(label: "avmae_compute_info", dimensions: compute.labels, factory: factory).record(1)

        let apiKeys: APIKeys?
        do { apiKeys = try config.apiKeyFile.map { try APIKeys(file: $0) } } catch let error as APIKeys.LoadError {
            throw ValidationError(error.description)
        }
        if let apiKeys {
            logger.info("API keys required", metadata: ["keys": "\(apiKeys.count)",
                                                       "exempt_paths": "\(config.authExemptPaths)"])
        }
        let workers = try BundleLoader.decodeWorkers(config, logger: logger, metricsFactory: factory)
        let daemon = Daemon(config: config, logger: logger, metricsFactory: factory,
                            exposition: MetricsExposition(registry: registry, factory: factory), apiKeys: apiKeys,
                            loader: { try BundleLoader.load($0, workers: workers) })
        let notifier = SystemdNotifier(logger: logger)
        let stop = SignalWaiter(signals: [SIGTERM, SIGINT])
        let reload = ReloadSignal {
            logger.info("SIGHUP received, reloading the model bundle")
            notifier.reloading()
            daemon.reload { swapped in
                // READY=1 whenever a model serves, also after a refused bundle (the previous one still does);
                // during the first load it comes from `whenLoaded` instead.
                guard daemon.lifecycle.state == .ready else { return }
                notifier.ready(status: swapped ? "serving (reloaded)" : "serving (reload failed, previous model kept)")
            }
        }
        let listenSocket: Int32?
        do { listenSocket = try ListenFDs.inheritedSocket() } catch {
            throw ValidationError("socket activation: \(error)")
        }
        let tls: TLSCredentials?
        do {
            tls = try config.tlsCert.map { try TLSCredentials(certificateFile: $0, keyFile: config.tlsKey ?? "") }
        } catch let error as TLSCredentials.LoadError {
            throw ValidationError(error.description)
        }
        let port = try daemon.start(listenSocket: listenSocket, tls: tls)
        // Tests and scripts read this line to find an ephemeral port.
        print("avmae-serve listening on \(tls == nil ? "http" : "https")://\(config.host):\(port)")
        fflush(stdout)
        daemon.whenLoaded { ready in
            guard ready else { return }
            notifier.ready()
            notifier.startWatchdog()
        }
        let signal = withExtendedLifetime(reload) { stop.wait() }
        logger.info("signal received, shutting down", metadata: ["signal": "\(signal)"])
        notifier.stopWatchdog()
        notifier.stopping()
        defer { workers?.shutdown() }
        if !daemon.shutdown() {
            logger.warning("drain timeout passed with requests still in flight; they were cut off")
            // A batch may still be inside OpenBLAS on the inference thread. exit() would run OpenBLAS's
            // destructor, which joins its worker threads mid-gemm and hangs; skip the destructors instead.
            fflush(stdout)
            fflush(stderr)
            _exit(0)
        }
    }

    /// Flag values as config keys, so flags go through the same parser as the file and environment.
    private func flags() throws -> [String: String] {
        var flags: [String: String] = [:]
        let named: [(String, CustomStringConvertible?)] = [
            ("bundle", bundle), ("host", host), ("port", port), ("max_batch", maxBatch), ("max_delay_ms", maxDelayMs),
            ("max_queue", maxQueue), ("http_threads", httpThreads), ("request_timeout_seconds", requestTimeoutSeconds),
            ("drain_timeout_seconds", drainTimeoutSeconds), ("max_body_bytes", maxBodyBytes), ("blas_threads", blasThreads),
            ("precision", precision), ("decode_isolation", decodeIsolation),
            ("log_level", logLevel), ("api_key_file", apiKeyFile),
            ("tls_cert", tlsCert), ("tls_key", tlsKey),
        ]
        for setting in settings {
            let pair = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw ValidationError("--set expects key=value, got '\(setting)'") }
            flags[pair[0]] = pair[1]
        }
        for case let (key, value?) in named { flags[key] = "\(value)" }
        return flags
    }
}

/// Blocks the main thread until one of `signals` arrives. The signals are ignored first so the default action
/// (terminate) does not race the handler; the sources live on this object's own queue.
final class SignalWaiter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "avmae.signals")
    private let received = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var which: Int32 = 0  // guarded by lock
    private var sources: [DispatchSourceSignal] = []

    init(signals: [Int32]) {
        for number in signals {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                lock.withLock { which = number }
                received.signal()
            }
            source.activate()
            sources.append(source)
        }
    }

    func wait() -> Int32 {
        received.wait()
        return lock.withLock { which }
    }
}
