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
        abstract: "Serve one or more model bundles over HTTP (see openapi.yaml).",
        usage: "avmae-serve serve [--config FILE] [--SETTING VALUE ...] [--set key=value ...]",
        discussion: """
            Every setting is a flag (--max-batch 8), an AVMAE_* environment variable (AVMAE_MAX_BATCH=8) and a key \
            of the JSON --config file ({"max_batch": 8}); lowest first: defaults, file, environment, flags. A \
            misspelt flag, variable or key is an error; AVMAE_* variables of Kubernetes service links are ignored.

            SETTINGS:
            \(ServerConfig.settingsHelp)
            """)

    @Option(help: "JSON config file (an object of setting keys).") var config: String?
    @Option(name: .customLong("set"), help: "Any setting, as key=value (repeatable).") var settings: [String] = []
    @Argument(parsing: .allUnrecognized, help: "Settings as --name value (see SETTINGS below).")
    var settingFlags: [String] = []

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
        for ignored in ServerConfig.ignoredEnvironment(ProcessInfo.processInfo.environment) {
            logger.notice("environment variable ignored", metadata: ["variable": "\(ignored)"])
        }
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
                            loader: { try BundleLoader.load($0, version: $1, config: config, workers: workers) })
        let notifier = SystemdNotifier(logger: logger)
        let stop = SignalWaiter(signals: [SIGTERM, SIGINT])
        let reload = ReloadSignal {
            logger.info("SIGHUP received, rescanning the model bundles")
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
        if !daemon.shutdown() {
            // A batch may still be inside OpenBLAS on the inference thread; ProcessEnd does not wait for it.
            logger.warning("drain timeout passed with requests still in flight; they were cut off")
        }
        workers?.shutdown()
        ProcessEnd.now(status: 0)
    }

    /// Flags as setting keys (`--max-batch 8`, `--max-batch=8` -> max_batch), so they go through the same
    /// table and parser as the file and the environment. A repeated flag of a list setting (--bundle) adds to it.
    private func flags() throws -> [String: String] {
        var flags: [String: String] = [:]
        for setting in settings {
            let pair = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw ValidationError("--set expects key=value, got '\(setting)'") }
            flags[pair[0]] = pair[1]
        }
        var arguments = settingFlags[...]
        while let argument = arguments.popFirst() {
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ValidationError("unexpected argument '\(argument)'; settings are --name value (see --help)")
            }
            var name = String(argument.dropFirst(2)), value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else {
                guard let next = arguments.popFirst() else { throw ValidationError("\(argument) needs a value") }
                value = next
            }
            let key = name.replacingOccurrences(of: "-", with: "_")
            guard let field = ServerConfig.fields.first(where: { $0.key == key }) else {
                throw ValidationError("unknown flag --\(name); known: \(ServerConfig.fields.map(\.flag).joined(separator: " "))")
            }
            if let earlier = flags[key], field.isList { value = earlier + "," + value }
            flags[key] = value
        }
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
