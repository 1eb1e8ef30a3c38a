import AVMAE
import Foundation

/// Every setting of `avmae-serve serve`, typed, with its default written out. Layers, lowest first: defaults,
/// an optional JSON config file, AVMAE_* environment variables, command-line flags. All layers use the same
/// snake_case keys (env: AVMAE_ + upper case, e.g. AVMAE_MAX_BATCH), parsed by one table.
public struct ServerConfig: Sendable, Equatable, CustomStringConvertible {
    /// Model bundle folders (config.json, model.safetensors, labels.csv), each `DIR` (served under the name in
    /// its config.json) or `NAME=DIR`.
    public var bundle = BundleList([])
    /// A folder of bundle folders, each served under its folder's name; SIGHUP rescans it.
    public var modelRepository: String?
    /// The model for requests that name none, when several are served.
    public var defaultModel: String?
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
    /// The longest a request may take, decode, queue and inference together; a request's `timeout_ms` can
    /// only shorten it. At least one full-size reference request (deploy/README.md "Time limits").
    public var requestTimeoutSeconds = 120.0
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
    public var drainTimeoutSeconds = 240.0
    /// Window hop for long clips; unset means the model's clip length (no overlap).
    public var hopSeconds: Double?
    public var maxDurationSeconds = 600.0
    /// Video frame sets (windows x crops) one request may decode to, 4.8 MB of bytes each at 32 frames.
    public var maxVideoRows = 128
    /// `?stream=true` (NDJSON, window by window, in bounded memory): recordings streamed at once, their upload
    /// limit, the size past which an upload goes to an unlinked file in $TMPDIR rather than memory, and the
    /// longest recording (which only bounds how long one request may take: an hour of audio is minutes of the
    /// whole machine at ViT-Large).
    public var maxStreams = 2
    public var streamMaxBodyBytes = 2 * 1024 * 1024 * 1024
    public var streamSpoolBytes = 16 * 1024 * 1024
    public var streamMaxDurationSeconds = 4 * 3600.0
    /// OpenBLAS threads for the one inference thread's matrix products; unset keeps OpenBLAS's own choice
    /// (OPENBLAS_NUM_THREADS, else all cores). On a machine shared with other work, fewer can be faster.
    public var blasThreads: Int?
    /// The encoder's number format: fp32 (OpenBLAS, upstream's numbers) or, where the CPU runs them fast,
    /// int8 / bf16 on oneDNN (accuracy in models/README.md). Refused at start-up where unavailable.
    public var precision = Precision.fp32
    public var logLevel = "info"
    /// Bearer keys, one per line; unset means no authentication.
    public var apiKeyFile: String?
    /// Paths answered without a key even when `api_key_file` is set, so probes and scrapers need none, and the
    /// playground page loads and can ask for a key.
    /// Probes (ours and the protocol's, which Kubernetes and KServe point at), Prometheus and the playground.
    public var authExemptPaths = PathList(["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"]
                                          + Playground.paths)
    /// Origins whose pages may call the API from a browser (CORS); "*" allows any. Empty: no CORS headers.
    public var corsAllowedOrigins = OriginList([])

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

    /// Bundles to serve, comma-separated: `DIR` or `NAME=DIR` each, e.g. `audioset=/srv/as,vggsound=/srv/vgg`.
    public struct BundleList: Sendable, Equatable, LosslessStringConvertible {
        public struct Entry: Sendable, Equatable {
            /// nil: the name in the bundle's config.json.
            public var name: String?
            public var directory: String

            public init(name: String?, directory: String) {
                self.name = name
                self.directory = directory
            }
        }

        public var entries: [Entry]

        public init(_ entries: [Entry]) { self.entries = entries }

        public init?(_ description: String) {
            var entries: [Entry] = []
            for item in description.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
            where !item.isEmpty {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 {
                    guard ModelName.isValid(parts[0]), !parts[1].isEmpty else { return nil }
                    entries.append(Entry(name: parts[0], directory: parts[1]))
                } else {
                    entries.append(Entry(name: nil, directory: item))
                }
            }
            self.entries = entries
        }

        public var description: String {
            entries.map { entry in entry.name.map { "\($0)=\(entry.directory)" } ?? entry.directory }
                .joined(separator: ",")
        }
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

    /// A comma-separated list of web origins, `scheme://host[:port]` each (no path), or `*`.
    public struct OriginList: Sendable, Equatable, LosslessStringConvertible {
        public var origins: [String]

        public init(_ origins: [String]) { self.origins = origins }

        /// Fails unless every entry is `*` or an http(s) origin; an empty string is the empty list.
        public init?(_ description: String) {
            let origins = description.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard origins.allSatisfy(Self.isOrigin) else { return nil }
            self.origins = origins
        }

        private static func isOrigin(_ text: String) -> Bool {
            if text == "*" { return true }
            guard let scheme = ["http://", "https://"].first(where: text.hasPrefix) else { return false }
            let host = text.dropFirst(scheme.count)
            // Browsers send the origin without a path or trailing slash, so an entry with one never matches.
            return !host.isEmpty && !host.contains("/") && !host.contains(where: \.isWhitespace)
        }

        public var description: String { origins.joined(separator: ",") }
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

    /// Builds the configuration from all layers and validates it. Unknown keys are errors in every layer; of the
    /// AVMAE_* variables, only those of this project's tools and Kubernetes' service links are let through
    /// (`ignoredEnvironment` names them, for the start-up log). `defaults` replaces built-in defaults for a
    /// command whose work differs from serving (bulk runs), below every layer the user sets.
    public static func load(file: String?, environment: [String: String], flags: [String: String],
                            defaults: [String: String] = [:]) throws -> ServerConfig {
        var config = ServerConfig()
        for (key, value) in defaults.sorted(by: { $0.key < $1.key }) {
            try config.set(key, value, source: "default")
        }
        if let file {
            for (key, value) in try fileSettings(file).sorted(by: { $0.key < $1.key }) {
                try config.set(key, value, source: "config file \(file)")
            }
        }
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("AVMAE_") {
            guard ignoredReason(name, value) == nil else { continue }
            let key = name.dropFirst("AVMAE_".count).lowercased()
            try config.set(key, value, source: "environment \(name)")
        }
        for (key, value) in flags.sorted(by: { $0.key < $1.key }) {
            try config.set(key, value, source: "flag")
        }
        try config.validate()
        return config
    }

    /// The AVMAE_* variables `load` skipped that someone may have meant as settings (not the tools' own), with why.
    public static func ignoredEnvironment(_ environment: [String: String]) -> [String] {
        environment.sorted { $0.key < $1.key }.compactMap { name, value in
            toolVariables.contains(name) ? nil : ignoredReason(name, value).map { "\(name): \($0)" }
        }
    }

    /// Variables of the project's tools and tests, read by them, not by `serve`.
    static let toolVariables: Set<String> = [
        "AVMAE_SERVE_BIN", "AVMAE_GOLDEN_DIR", "AVMAE_GUARD_PAGES", "AVMAE_ALLOW_SLOW_BLAS", "AVMAE_TEST_BLAS_FALLBACK",
        "AVMAE_BLAS_CORE_DETECTED", "AVMAE_CATALOG", "AVMAE_PYTHON",
    ]

    private static func ignoredReason(_ name: String, _ value: String) -> String? {
        guard name.hasPrefix("AVMAE_") else { return nil }
        if toolVariables.contains(name) { return "read by avmae-serve's tools, not a setting" }
        // Kubernetes adds <SERVICE>_SERVICE_HOST, <SERVICE>_PORT=tcp://... and the like for every Service in the
        // namespace; a Service named avmae-serve (or avmae) must not stop the daemon that backs it.
        let link = #"^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$"#
        if name.range(of: link, options: .regularExpression) != nil { return "a Kubernetes service link" }
        if ["tcp://", "udp://", "sctp://"].contains(where: value.hasPrefix) {
            return "a Kubernetes service link (\(value)), not a setting"
        }
        return nil
    }

    public mutating func set(_ key: String, _ value: String, source: String) throws {
        guard let field = Self.fields.first(where: { $0.key == key }) else {
            throw ConfigError.unknownKey(key, source: source)
        }
        guard field.set(&self, value) else { throw ConfigError.badValue(key: key, value: value, source: source) }
    }

    public func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigError.invalid(why) } }
        try require(!bundle.entries.isEmpty || modelRepository != nil,
                    "no model; pass --bundle DIR (or NAME=DIR, repeatable) or --model-repository DIR")
        try require(modelRepository.map { !$0.isEmpty } ?? true, "model_repository must not be empty")
        try require(defaultModel.map(ModelName.isValid) ?? true, "default_model: \(ModelName.rule)")
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
        try require(maxStreams >= 0, "max_streams must not be negative (0 turns streaming off)")
        try require(streamMaxBodyBytes >= 1, "stream_max_body_bytes must be positive")
        try require(streamSpoolBytes >= 0, "stream_spool_bytes must not be negative")
        try require(streamMaxDurationSeconds > 0, "stream_max_duration_seconds must be positive")
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

    /// The file's settings as text, each checked against its setting's kind: numbers stay numbers, a list may be
    /// an array, and a number given as a string (or the reverse) is refused.
    private static func fileSettings(_ path: String) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError.unreadableFile(path, "cannot read it (\(error.localizedDescription))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigError.unreadableFile(path, "expected a JSON object of settings, e.g. {\"max_batch\": 8}")
        }
        let source = "config file \(path)"
        var settings: [String: String] = [:]
        for (key, value) in object {
            guard let field = fields.first(where: { $0.key == key }) else { throw ConfigError.unknownKey(key, source: source) }
            func wrongType(_ expected: String) -> ConfigError {
                .badValue(key: key, value: "\(value) (expected \(expected))", source: source)
            }
            switch (field.kind, value) {
            case (.integer, let number as NSNumber) where !(value is String):
                guard number.doubleValue == number.doubleValue.rounded() else { throw wrongType("an integer") }
                settings[key] = "\(number.intValue)"
            case (.number, let number as NSNumber) where !(value is String):
                settings[key] = "\(number.doubleValue)"
            case (.text, let text as String), (.list, let text as String):
                settings[key] = text
            case (.list, let items as [String]):
                settings[key] = items.joined(separator: ",")
            case (.integer, _): throw wrongType("an integer")
            case (.number, _): throw wrongType("a number")
            case (.list, _): throw wrongType("a string or an array of strings")
            case (.text, _): throw wrongType("a string")
            }
        }
        return settings
    }
}

extension ServerConfig {
    /// How a setting's value is written in the JSON config file; env and flags are text for every kind.
    enum ValueKind: Sendable {
        case text, integer, number
        /// A JSON array of strings, or the comma-separated text.
        case list
    }

    /// One setting: its key (`max_batch`, also `--max-batch` and `AVMAE_MAX_BATCH`), its help line, and how to
    /// read and print it. `fields` is the one table every layer, `--help` and the start-up log read.
    public struct Field: Sendable {
        public let key: String
        public let help: String
        let kind: ValueKind
        let set: @Sendable (inout ServerConfig, String) -> Bool
        let get: @Sendable (ServerConfig) -> String

        public var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }
        /// The setting's value in `config` as text, "(unset)" for an optional one without a value.
        public func value(in config: ServerConfig) -> String { get(config) }
        /// A repeated flag adds to the list rather than replacing it.
        public var isList: Bool { kind == .list }
        public var environmentName: String { "AVMAE_" + key.uppercased() }
    }

    private static func kind<T>(of _: T.Type) -> ValueKind {
        if T.self == Int.self { return .integer }
        if T.self == Double.self { return .number }
        if T.self == BundleList.self || T.self == PathList.self || T.self == OriginList.self { return .list }
        return .text
    }

    static func field<T: LosslessStringConvertible & Sendable>(
        _ key: String, _ path: WritableKeyPath<ServerConfig, T> & Sendable, _ help: String) -> Field {
        Field(key: key, help: help, kind: kind(of: T.self),
              set: { config, text in
                  guard let value = T(text.trimmingCharacters(in: .whitespaces)) else { return false }
                  config[keyPath: path] = value
                  return true
              },
              get: { "\($0[keyPath: path])" })
    }

    static func field<T: LosslessStringConvertible & Sendable>(
        _ key: String, _ path: WritableKeyPath<ServerConfig, T?> & Sendable, _ help: String) -> Field {
        Field(key: key, help: help, kind: kind(of: T.self),
              set: { config, text in
                  guard let value = T(text.trimmingCharacters(in: .whitespaces)) else { return false }
                  config[keyPath: path] = value
                  return true
              },
              get: { $0[keyPath: path].map { "\($0)" } ?? "(unset)" })
    }

    public static let fields: [Field] = [
        field("bundle", \.bundle, "Model bundle folder, or NAME=DIR to serve it as NAME; repeatable (comma-separated in env)."),
        field("model_repository", \.modelRepository, "Folder of bundle folders, each served under its folder's name; SIGHUP rescans it."),
        field("default_model", \.defaultModel, "Model for requests that name none, when several are served."),
        field("host", \.host, "Address to listen on."),
        field("port", \.port, "Port to listen on (0 = any free port)."),
        field("http_threads", \.httpThreads, "libmicrohttpd polling threads; they parse and route, never run the model."),
        field("connection_limit", \.connectionLimit, "Open connections at most."),
        field("connection_timeout_seconds", \.connectionTimeoutSeconds, "Idle connection timeout, s."),
        field("connection_memory_bytes", \.connectionMemoryBytes, "libmicrohttpd's per-connection buffer for headers and reads."),
        field("max_body_bytes", \.maxBodyBytes, "Largest accepted request body, bytes."),
        field("max_batch", \.maxBatch, "Rows (windows x crops) per model call; 1 turns batching off."),
        field("max_delay_ms", \.maxDelayMs, "Longest a row waits for a fuller batch, ms."),
        field("max_queue", \.maxQueue, "Rows allowed to wait for the model before new requests get 503."),
        field("max_batch_seconds", \.maxBatchSeconds, "A batch stops growing once its estimated model time passes this, s."),
        field("request_timeout_seconds", \.requestTimeoutSeconds, "Longest a request may take (decode, queue, inference), s; caps timeout_ms."),
        field("decode_threads", \.decodeThreads, "Uploads decoded in parallel, per model."),
        field("decode_isolation", \.decodeIsolation, "Decode in sandboxed worker processes (process) or in the daemon (none)."),
        field("decode_workers", \.decodeWorkers, "Warm decode worker processes, shared by every model."),
        field("decode_worker_memory_mib", \.decodeWorkerMemoryMib, "RLIMIT_DATA of each decode worker, MiB."),
        field("decode_worker_cpu_seconds", \.decodeWorkerCpuSeconds, "CPU time one clip may take in a decode worker, s."),
        field("max_pending_decodes", \.maxPendingDecodes, "Uploads allowed to wait for a decode thread before 503."),
        field("retry_after_seconds", \.retryAfterSeconds, "Retry-After on 503 until the queue's cost is known, s."),
        field("drain_timeout_seconds", \.drainTimeoutSeconds, "Longest shutdown (and a retired model) waits for admitted requests, s."),
        field("hop_seconds", \.hopSeconds, "Window hop for long clips, s; unset = the model's clip length."),
        field("max_duration_seconds", \.maxDurationSeconds, "Longest accepted clip, s."),
        field("max_video_rows", \.maxVideoRows, "Video frame sets (windows x crops) one request may decode to."),
        field("max_streams", \.maxStreams, "Recordings streamed (?stream=true) at once; more get 503."),
        field("stream_max_body_bytes", \.streamMaxBodyBytes, "Largest upload of a streamed request, bytes."),
        field("stream_spool_bytes", \.streamSpoolBytes, "A streamed upload larger than this goes to a temporary file, bytes."),
        field("stream_max_duration_seconds", \.streamMaxDurationSeconds, "Longest recording a stream accepts, s."),
        field("blas_threads", \.blasThreads, "OpenBLAS threads for inference; unset = OpenBLAS's own choice."),
        field("precision", \.precision, "Encoder precision: fp32, or int8 / bf16 where the CPU runs them fast."),
        field("log_level", \.logLevel, "trace, debug, info, notice, warning, error or critical."),
        field("api_key_file", \.apiKeyFile, "File of API keys, one per line; clients send 'Authorization: Bearer <key>'."),
        field("auth_exempt_paths", \.authExemptPaths, "Paths answered without a key, comma-separated."),
        field("tls_cert", \.tlsCert, "PEM certificate (chain) for HTTPS; needs tls_key."),
        field("tls_key", \.tlsKey, "Unencrypted PEM private key for HTTPS; needs tls_cert."),
        field("cors_allowed_origins", \.corsAllowedOrigins, "Origins browser pages may call from, comma-separated, or *; default none."),
    ]

    /// Every setting for `serve --help`: flag, variable, default and help.
    public static var settingsHelp: String {
        let defaults = ServerConfig()
        return fields.map { "  \($0.flag) (\($0.environmentName), default \($0.get(defaults)))\n      \($0.help)" }
            .joined(separator: "\n")
    }
}
