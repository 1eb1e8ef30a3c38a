import ArgumentParser
import AVMAE
import Foundation
import HTTPServer
import Logging
import Metrics
import Serving

/// A bulk run from start to end: configuration, the inputs (listed, sharded, and what earlier runs already
/// settled), the serving core built exactly as `serve` builds it, the runner, and the summary. Like `serve`, this
/// is a command's `run`, the one place that bootstraps logging.
///
/// Prints one JSON summary line on stdout. Exit status: 0 when every file of the run has its final line (ok, or
/// an error of the file's own), 1 when some failed for other reasons (a rerun retries them) or results.jsonl
/// could not be written, 128 + the signal's number when interrupted.
struct BulkRun {
    let command: String
    let options: BulkOptions
    /// The job, given the output folder (embeddings are written under it).
    let job: (URL) -> BulkJob

    struct Summary: Encodable {
        var command: String
        var listed: Int
        var inShard: Int
        var alreadyDone: Int
        var ok = 0
        var failed = 0
        var retryable = 0
        var seconds = 0.0
        var filesPerSecond = 0.0
        /// The signal that stopped the run early.
        var interruptedBy: Int32?
        var resultsWriteError: String?
        var results: String
    }

    func execute() throws {
        let (config, logger) = try bootstrap()
        let output = URL(fileURLWithPath: options.output)
        let log = try BulkResultsLog(folder: output)
        let job = job(output)
        let sources = try ModelSource.scan(config)
        guard sources.count == 1, let source = sources.first else {
            throw ValidationError("a bulk run takes one model: pass one --bundle DIR")
        }
        let version = try BundleDigest.version(of: source.directory)
        let (todo, planned) = try plan(log: log, job: job, modelVersion: version, output: output, logger: logger)
        var summary = planned
        if !todo.isEmpty {
            try process(todo, job: job, model: source, version: version, log: log, config: config, logger: logger,
                        summary: &summary)
        }
        try report(summary)
    }

    /// The configuration, checked; logging bootstrapped; the compute engine and its BLAS threads set up.
    private func bootstrap() throws -> (ServerConfig, Logger) {
        let kernel = try KernelCheck.run()
        let config = try options.serverConfig()
        do { try ComputeEngine.checkAvailable(config.precision) } catch let error as ComputeError {
            throw ValidationError(error.description)
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "avmae-serve")
        logger.info("configuration", metadata: ["config": "\(config)"])
        if let threads = config.blasThreads { BLAS.threads = threads }
        let compute = kernel.info(precision: config.precision)
        logger.info("compute", metadata: .init(uniqueKeysWithValues: compute.fields.map { ($0, .string($1)) }))
        if let warning = kernel.warning { logger.warning("slow BLAS kernel", metadata: ["reason": "\(warning)"]) }
        return (config, logger)
    }

    /// The files this run does: listed, in this shard, and not settled by an earlier run's line for this model
    /// version.
    private func plan(log: BulkResultsLog, job: BulkJob, modelVersion: String, output: URL,
                      logger: Logger) throws -> ([BulkInput], Summary) {
        if log.tornBytes > 0 {
            logger.warning("results.jsonl ended in a torn line (the last run was killed mid-write); cut it off",
                           metadata: ["bytes": "\(log.tornBytes)"])
        }
        if log.unreadableLines > 0 {
            logger.warning("results.jsonl has lines that are not results; their files are done again",
                           metadata: ["lines": "\(log.unreadableLines)"])
        }
        let listed = try BulkInputs.list(options.paths, output: options.output)
        let inShard = options.shard.map { shard in listed.filter { shard.contains($0.relativePath) } } ?? listed
        let todo = inShard.filter { input in
            !(log.earlier[input.relativePath]?.settles(input, modelVersion: modelVersion, arrayExists: job.arrayExists) ?? false)
        }
        let summary = Summary(command: command, listed: listed.count, inShard: inShard.count,
                              alreadyDone: inShard.count - todo.count,
                              results: output.appendingPathComponent(BulkResultsLog.fileName).path)
        logger.info("inputs", metadata: [
            "listed": "\(summary.listed)", "shard": "\(options.shard?.description ?? "all")",
            "in_shard": "\(summary.inShard)", "already_done": "\(summary.alreadyDone)", "to_do": "\(todo.count)",
        ])
        return (todo, summary)
    }

    /// The JSON summary on stdout, one human line on stderr, and the exit status.
    private func report(_ summary: Summary) throws -> Never {
        print(String(decoding: try Self.encoder.encode(summary), as: UTF8.self))
        fflush(stdout)
        FileHandle.standardError.write(Data("""
            \(command): \(summary.ok) ok, \(summary.failed) failed (\(summary.retryable) to retry), \
            \(summary.alreadyDone) done before; \(String(format: "%.2f", summary.filesPerSecond)) files/s; \
            \(summary.results)\n
            """.utf8))
        if let signal = summary.interruptedBy { ProcessEnd.now(status: 128 + signal) }
        ProcessEnd.now(status: summary.retryable > 0 || summary.resultsWriteError != nil ? 1 : 0)
    }

    private func process(_ todo: [BulkInput], job: BulkJob, model source: ModelSource, version: String,
                         log: BulkResultsLog, config: ServerConfig, logger: Logger, summary: inout Summary) throws {
        // No /metrics here: the serving core's counters go nowhere.
        let metrics = NOOPMetricsHandler.instance
        let workers = try BundleLoader.decodeWorkers(config, logger: logger, metricsFactory: metrics)
        defer { workers?.shutdown() }
        let (backend, decoder) = try BundleLoader.load(source, version: version, config: config, workers: workers)
        try job.check(backend.info)
        let lifecycle = Lifecycle(logger: logger)
        lifecycle.move(to: .warming)
        let service = ClipService(backend: backend, decoder: decoder, configuration: config.serving,
                                  lifecycle: lifecycle, logger: logger, metrics: ServingMetrics(factory: metrics, model: source.name))
        try service.warmUp()
        lifecycle.move(to: .ready)

        let progress = BulkProgress(total: todo.count, logger: logger)
        let interruption = BulkInterruption { signal in
            logger.notice("stopping: finishing the clips in flight (signal again to quit at once)",
                          metadata: ["signal": "\(signal)"])
        }
        progress.start()
        let runner = BulkRunner(service: service, job: job, log: log, maxBytes: config.maxBodyBytes,
                                window: BulkOptions.window(config), logger: logger)
        let tally = runner.run(todo, progress: progress, interruption: interruption)
        progress.finish()
        summary.ok = tally.ok
        summary.failed = tally.failed
        summary.retryable = tally.retryable
        summary.seconds = progress.seconds
        summary.filesPerSecond = Double(tally.ok + tally.failed) / max(progress.seconds, 1e-9)
        summary.interruptedBy = interruption.received
        summary.resultsWriteError = tally.logError
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
