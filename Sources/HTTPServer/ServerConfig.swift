import AVMAE
import Foundation

/// Every setting of `avmae-serve serve`, typed, with its default written out. Layers, lowest first: defaults,
/// an optional JSON config file, AVMAE_* environment variables, command-line flags. All layers use the same
/// snake_case keys (env: AVMAE_ + upper case, e.g. AVMAE_MAX_BATCH), parsed by one table.
public struct ServerConfig: Sendable, Equatable, CustomStringConvertible {
    /// Model bundle folder (config.json, model.safetensors, labels.csv).
    public var bundle: String?
    public var host = "0.0.0.0"
    public var port = 8080
    /// libmicrohttpd polling threads (epoll); they only parse and route, never run the model.
    public var httpThreads = 2
    public var connectionLimit = 256
    public var connectionTimeoutSeconds = 30
    public var connectionMemoryBytes = 64 * 1024
    public var maxBodyBytes = 64 * 1024 * 1024
    /// Rows (clip windows x crops) per model call; 1 turns batching off.
    public var maxBatch = 8
    public var maxDelayMs = 5.0
    /// Estimated model seconds a batch may grow to, from each row kind's measured cost: batches of small rows
    /// (`max_batch` of them), ViT-Large rows one at a time, where batching saves little and delays every row.
    public var maxBatchSeconds = 1.0
    /// Rows allowed to wait for the model before new requests get 503.
    public var maxQueue = 64
    /// Longest a request may wait for the model; admission refuses at once one whose estimated wait is longer.
    /// At least one full-size reference request (deploy/README.md "Time limits").
    public var requestTimeoutSeconds = 90.0
    public var decodeThreads = 2
    /// Where uploads are decoded: `process` in sandboxed worker processes (a decoder crash costs one request),
    /// `none` in the daemon itself (for debugging).
    public var decodeIsolation = Isolation.process
    /// Warm decode workers (with `decode_isolation=process`); more than `decode_threads` only waits.
    public var decodeWorkers = 2
    /// RLIMIT_DATA of each decode worker: the clip, its decoded audio and frames, FFmpeg's buffers.
    public var decodeWorkerMemoryMib = 1024
    /// CPU time one clip may take in a decode worker (RLIMIT_CPU, per clip).
    public var decodeWorkerCpuSeconds = 60
    public var maxPendingDecodes = 64
    public var retryAfterSeconds = 1
    /// The queue deadline plus one reference request: the last request admitted before SIGTERM can finish.
    public var drainTimeoutSeconds = 180.0
    /// Window hop for long clips; unset means the model's clip length (no overlap).
    public var hopSeconds: Double?
    public var maxDurationSeconds = 600.0
    /// Video frame sets (windows x crops) one request may decode to, 4.8 MB of bytes each at 32 frames.
    public var maxVideoRows = 128
    /// OpenBLAS threads for the one inference thread's matrix products; unset keeps OpenBLAS's own choice
    /// (OPENBLAS_NUM_THREADS, else all cores). On a machine shared with other work, fewer can be faster.
    public var blasThreads: Int?
    /// The encoder's number format: fp32 (OpenBLAS, upstream's numbers) or, where the CPU runs them fast,
    /// int8 / bf16 on oneDNN (accuracy in models/README.md). Refused at start-up where unavailable.
    public var precision = Precision.fp32
    public var logLevel = "info"
    /// Bearer keys, one per line; unset means no authentication.
    public var apiKeyFile: String?
    /// Paths answered without a key even when `api_key_file` is set, so probes and scrapers need none.
    public var authExemptPaths = PathList(["/healthz", "/readyz", "/metrics"])

    /// HTTPS: PEM certificate (chain) and unencrypted PEM private key; both or neither. Unset serves plain HTTP.
    public var tlsCert: String?
    public var tlsKey: String?

    public init() {}

    public enum Isolation: String, Sendable, Equatable, LosslessStringConvertible {
        case process
        case none

        public init?(_ description: String) { self.init(rawValue: description) }
        public var description: String { rawValue }
    }

    /// A comma-separated list of URL paths, e.g. `/healthz,/readyz`.
    public struct PathList: Sendable, Equatable, LosslessStringConvertible {
        public var paths: [String]

        public init(_ paths: [String]) { self.paths = paths }

        /// Fails unless every entry starts with '/'; an empty string is the empty list.
        public init?(_ description: String) {
            let paths = description.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard paths.allSatisfy({ $0.hasPrefix("/") }) else { return nil }
            self.paths = paths
        }

        public var description: String { paths.joined(separator: ",") }
    }

    public enum ConfigError: Error, CustomStringConvertible, Equatable {
        case unknownKey(String, source: String)
        case badValue(key: String, value: String, source: String)
        case invalid(String)
        case unreadableFile(String, String)

        public var description: String {
            switch self {
            case .unknownKey(let key, let source):
                return "\(source): unknown setting '\(key)'; known: \(ServerConfig.fields.map(\.key).joined(separator: ", "))"
            case .badValue(let key, let value, let source): return "\(source): '\(value)' is not a valid value for \(key)"
            case .invalid(let why): return "invalid configuration: \(why)"
            case .unreadableFile(let path, let why): return "config file \(path): \(why)"
            }
        }
    }

    /// Builds the configuration from all layers and validates it.
    public static func load(file: String?, environment: [String: String], flags: [String: String]) throws -> ServerConfig {
        var config = ServerConfig()
        if let file {
            for (key, value) in try fileSettings(file).sorted(by: { $0.key < $1.key }) {
                try config.set(key, value, source: "config file \(file)")
            }
        }
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("AVMAE_") {
            let key = name.dropFirst("AVMAE_".count).lowercased()
            // Other AVMAE_* variables (AVMAE_SERVE_BIN, AVMAE_GOLDEN_DIR) belong to tools and tests, not to us.
            guard fields.contains(where: { $0.key == key }) else { continue }
            try config.set(key, value, source: "environment \(name)")
        }
        for (key, value) in flags.sorted(by: { $0.key < $1.key }) {
            try config.set(key, value, source: "flag")
        }
        try config.validate()
        return config
    }

    public mutating func set(_ key: String, _ value: String, source: String) throws {
        guard let field = Self.fields.first(where: { $0.key == key }) else {
            throw ConfigError.unknownKey(key, source: source)
        }
        guard field.set(&self, value) else { throw ConfigError.badValue(key: key, value: value, source: source) }
    }

    public func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigError.invalid(why) } }
        try require(bundle.map { !$0.isEmpty } ?? false, "no model bundle; pass --bundle DIR or set AVMAE_BUNDLE")
        try require((0...65535).contains(port), "port must be in 0...65535")
        try require(httpThreads >= 1, "http_threads must be at least 1")
        try require(connectionLimit >= 1, "connection_limit must be at least 1")
        try require(connectionTimeoutSeconds >= 1, "connection_timeout_seconds must be at least 1")
        try require(connectionMemoryBytes >= 8 * 1024, "connection_memory_bytes must be at least 8192")
        try require(maxBodyBytes >= 1, "max_body_bytes must be positive")
        try require(maxBatch >= 1, "max_batch must be at least 1 (1 = batching off)")
        try require(maxDelayMs >= 0, "max_delay_ms must not be negative")
        try require(maxBatchSeconds > 0, "max_batch_seconds must be positive")
        try require(maxQueue >= 1, "max_queue must be at least 1")
        try require(requestTimeoutSeconds > 0, "request_timeout_seconds must be positive")
        try require(decodeThreads >= 1, "decode_threads must be at least 1")
        try require(decodeWorkers >= 1, "decode_workers must be at least 1")
        try require(decodeWorkerMemoryMib >= 16, "decode_worker_memory_mib must be at least 16")
        try require(decodeWorkerCpuSeconds >= 1, "decode_worker_cpu_seconds must be at least 1")
        try require(maxPendingDecodes >= 0, "max_pending_decodes must not be negative")
        try require(retryAfterSeconds >= 1, "retry_after_seconds must be at least 1")
        try require(drainTimeoutSeconds >= 0, "drain_timeout_seconds must not be negative")
        try require(hopSeconds.map { $0 > 0 } ?? true, "hop_seconds must be positive")
        try require(maxDurationSeconds > 0, "max_duration_seconds must be positive")
        try require(maxVideoRows >= 1, "max_video_rows must be at least 1")
        try require(blasThreads.map { $0 >= 1 } ?? true, "blas_threads must be at least 1")
        try require(apiKeyFile.map { !$0.isEmpty } ?? true, "api_key_file must not be empty (leave it unset for no keys)")
        try require((tlsCert == nil) == (tlsKey == nil), "tls_cert and tls_key go together: set both for HTTPS, or neither")
        try require(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
                    "log_level must be one of trace, debug, info, notice, warning, error, critical")
    }

    /// One line per setting, for the start-up log.
    public var description: String {
        Self.fields.map { "\($0.key)=\($0.get(self))" }.joined(separator: " ")
    }

    private static func fileSettings(_ path: String) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError.unreadableFile(path, "cannot read it (\(error.localizedDescription))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigError.unreadableFile(path, "expected a JSON object of settings, e.g. {\"max_batch\": 8}")
        }
        return object.mapValues { "\($0)" }
    }
}

extension ServerConfig {
    struct Field: Sendable {
        let key: String
        let set: @Sendable (inout ServerConfig, String) -> Bool
        let get: @Sendable (ServerConfig) -> String
    }

    static func field<T: LosslessStringConvertible & Sendable>(
        _ key: String, _ path: WritableKeyPath<ServerConfig, T> & Sendable) -> Field {
        Field(key: key,
              set: { config, text in
                  guard let value = T(text.trimmingCharacters(in: .whitespaces)) else { return false }
                  config[keyPath: path] = value
                  return true
              },
              get: { "\($0[keyPath: path])" })
    }

    static func field<T: LosslessStringConvertible & Sendable>(
        _ key: String, _ path: WritableKeyPath<ServerConfig, T?> & Sendable) -> Field {
        Field(key: key,
              set: { config, text in
                  guard let value = T(text.trimmingCharacters(in: .whitespaces)) else { return false }
                  config[keyPath: path] = value
                  return true
              },
              get: { $0[keyPath: path].map { "\($0)" } ?? "(unset)" })
    }

    static let fields: [Field] = [
        field("bundle", \.bundle), field("host", \.host), field("port", \.port),
        field("http_threads", \.httpThreads), field("connection_limit", \.connectionLimit),
        field("connection_timeout_seconds", \.connectionTimeoutSeconds),
        field("connection_memory_bytes", \.connectionMemoryBytes), field("max_body_bytes", \.maxBodyBytes),
        field("max_batch", \.maxBatch), field("max_delay_ms", \.maxDelayMs), field("max_queue", \.maxQueue),
        field("max_batch_seconds", \.maxBatchSeconds),
        field("request_timeout_seconds", \.requestTimeoutSeconds), field("decode_threads", \.decodeThreads),
        field("decode_isolation", \.decodeIsolation), field("decode_workers", \.decodeWorkers),
        field("decode_worker_memory_mib", \.decodeWorkerMemoryMib),
        field("decode_worker_cpu_seconds", \.decodeWorkerCpuSeconds),
        field("max_pending_decodes", \.maxPendingDecodes), field("retry_after_seconds", \.retryAfterSeconds),
        field("drain_timeout_seconds", \.drainTimeoutSeconds), field("hop_seconds", \.hopSeconds),
        field("max_duration_seconds", \.maxDurationSeconds), field("max_video_rows", \.maxVideoRows),
        field("blas_threads", \.blasThreads), field("precision", \.precision),
        field("log_level", \.logLevel), field("api_key_file", \.apiKeyFile),
        field("auth_exempt_paths", \.authExemptPaths), field("tls_cert", \.tlsCert), field("tls_key", \.tlsKey),
    ]
}
