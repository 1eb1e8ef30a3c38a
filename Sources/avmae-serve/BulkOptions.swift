import ArgumentParser
import Foundation
import HTTPServer

/// The flags `classify` and `embed` share: what to read, where to write, which part of it, and the serving
/// settings. Settings are `serve`'s own (same names, --config file, AVMAE_* environment, --set key=value), so
/// one configuration drives the daemon and a bulk run alike.
struct BulkOptions: ParsableArguments {
    @Argument(help: "Files or folders (searched recursively; names starting with '.' are skipped).")
    var paths: [String]

    @Option(help: "Folder for results.jsonl and the .npy files; a rerun into it skips the files already done.")
    var output: String

    @Option(help: ArgumentHelp("Only the I-th (from 0) of N parts of the inputs, split by a hash of each relative path.",
                               valueName: "I/N"))
    var shard: BulkShard?

    @Option(help: "JSON config file (serve's settings).") var config: String?
    @Option(help: "Model bundle folder.") var bundle: String?
    @Option(help: "OpenBLAS threads for inference.") var blasThreads: Int?
    @Option(help: "Clips decoded at once (default here: one per core).") var decodeThreads: Int?
    @Option(help: "Rows per model call; 1 turns batching off.") var maxBatch: Int?
    @Option(help: "Encoder precision: fp32 (default), int8 or bf16 (where the CPU runs it fast).") var precision: String?
    @Option(help: "Decode in sandboxed worker processes (process) or in this process (none).") var decodeIsolation: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(name: .customLong("set"), help: "Any setting, as key=value (repeatable).") var settings: [String] = []

    /// `serve`'s configuration with bulk defaults beneath the user's layers. The runner bounds the clips in
    /// flight itself, so the server's refusals (queue rows, pending decodes, request deadline) are lifted out of
    /// its way, and decoding gets one thread (and worker) per core.
    func serverConfig(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfig {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let defaults: [String: String] = [
            "decode_threads": "\(cores)", "decode_workers": "\(cores)", "max_queue": "1000000",
            "max_pending_decodes": "1000000", "request_timeout_seconds": "604800",
        ]
        var flags: [String: String] = [:]
        for setting in settings {
            let pair = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw ValidationError("--set expects key=value, got '\(setting)'") }
            flags[pair[0]] = pair[1]
        }
        let named: [(String, CustomStringConvertible?)] = [
            ("bundle", bundle), ("blas_threads", blasThreads), ("decode_threads", decodeThreads),
            ("max_batch", maxBatch), ("precision", precision), ("decode_isolation", decodeIsolation),
            ("log_level", logLevel),
        ]
        for case let (key, value?) in named { flags[key] = "\(value)" }
        do {
            return try ServerConfig.load(file: config, environment: environment, flags: flags, defaults: defaults)
        } catch let error as ServerConfig.ConfigError {
            throw ValidationError(error.description)
        }
    }

    /// Clips in flight: a full batch waiting for the model while every decode thread works on the next ones.
    static func window(_ config: ServerConfig) -> Int {
        config.maxBatch + 2 * config.decodeThreads
    }
}
