import AVMAE
import Dispatch
import Logging
import Metrics

/// The serving core: decode on a bounded pool, batch, infer on the one worker, assemble the answer.
/// It knows nothing of HTTP; callers hand it a `ClipRequest` and get a `ClipResult` or a `ServingError`.
///
/// Owner of: the decode pool, the batcher (and through it the inference worker), the results queue.
/// Drain path: `drain(timeout:)` closes intake, flushes the batcher and waits for every admitted request
/// (decoding, queued, running or being assembled) to be answered. `retire(timeout:)` does the same for a
/// service replaced by a model reload, leaving the process lifecycle (and so intake) as it is.
public final class ClipService: Sendable {
    public struct Configuration: Sendable {
        public var maxBatch = 8
        public var maxDelaySeconds = 0.005
        /// A batch stops growing at this much estimated model time (see `BatchingStateMachine`).
        public var maxBatchSeconds = 1.0
        public var maxQueuedRows = 64
        /// A request not started on the model by then is answered with 503.
        public var requestTimeoutSeconds = 90.0
        public var decodeConcurrency = 2
        public var maxPendingDecodes = 64
        public var retryAfterSeconds = 1

        public init() {}
    }

    public let info: ModelInfo
    private let backend: InferenceBackend
    private let decoder: ClipDecoding
    private let configuration: Configuration
    private let clock: ServingClock
    private let logger: Logger
    private let metrics: ServingMetrics
    private let decodePool: DecodePool
    private let worker: InferenceWorker
    private let batcher: Batcher
    private let resultsQueue = DispatchQueue(label: "avmae.results", attributes: .concurrent)
    private let inFlight = DispatchGroup()
    private let intake: Lifecycle

    /// `inferenceQueue` is the one thread that runs model calls; share it between the services of
    /// successive reloads so only one of them is inside BLAS at a time.
    public init(backend: InferenceBackend, decoder: ClipDecoding, configuration: Configuration, lifecycle: Lifecycle,
                inferenceQueue: InferenceThread = InferenceThread(),
                clock: ServingClock = MonotonicClock(), logger: Logger, metrics: ServingMetrics) {
        self.info = backend.info
        self.backend = backend
        self.decoder = decoder
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.intake = lifecycle
        self.decodePool = DecodePool(concurrency: configuration.decodeConcurrency,
                                     maxPending: configuration.maxPendingDecodes)
        self.worker = InferenceWorker(backend: backend, queue: inferenceQueue, clock: clock, logger: logger)
        self.batcher = Batcher(
            configuration: .init(maxBatch: configuration.maxBatch, maxDelaySeconds: configuration.maxDelaySeconds,
                                 maxQueuedRows: configuration.maxQueuedRows,
                                 maxBatchSeconds: configuration.maxBatchSeconds),
            worker: worker, clock: clock, retryAfterSeconds: configuration.retryAfterSeconds, logger: logger,
            metrics: metrics)
    }

    /// Runs one zero-filled input of the model's full kind through the worker, so the first real request does
    /// not pay for page faults in the weights and first-touch of the workspace; then times one row of every kind
    /// the model takes (audio, video, both), which admission by cost starts from. Blocks the calling thread.
    public func warmUp() throws {
        let modalities = Set(info.modalities)
        _ = try timedRun(Self.kind(for: modalities))
        for kind in Self.kinds(for: modalities) {
            batcher.observe(kind: kind, rows: 1, seconds: try timedRun(kind))
        }
    }

    private func timedRun(_ kind: InputKind) throws -> Double {
        let row = BatchRow(waveform: kind != .video ? [Float](repeating: 0, count: info.windowSamples) : nil,
                           frames: kind != .audio ? [UInt8](repeating: 0, count: info.videoRowLength) : nil,
                           keepTokens: false)
        let done = DispatchSemaphore(value: 0)
        let outcome = ResultBox()
        worker.run([row], kind: kind) { result, seconds in
            outcome.set(result.map { _ in seconds })
            done.signal()
        }
        done.wait()
        return try outcome.get()
    }

    static func kinds(for modalities: Set<Modality>) -> [InputKind] {
        [modalities.contains(.audio) ? InputKind.audio : nil, modalities.contains(.video) ? .video : nil,
         modalities.isSuperset(of: [.audio, .video]) ? .audiovisual : nil].compactMap { $0 }
    }

    public func submit(_ request: ClipRequest, completion: @escaping @Sendable (Result<ClipResult, ServingError>) -> Void) {
        if let reason = intake.state.notReadyReason {
            metrics.rejected(.notReady)
            return completion(.failure(.notReady(reason)))
        }
        if case .classify = request.task, !info.hasHead {
            return completion(.failure(.unsupportedTask(
                "model '\(info.name)' is \(info.kind.rawValue) and has no classification head; use /v1/embed")))
        }
        let start = clock.now()
        inFlight.enter()
        let finish: @Sendable (Result<ClipResult, ServingError>) -> Void = { [inFlight] result in
            completion(result)
            inFlight.leave()
        }
        let admitted = decodePool.submit { [self] in
            decodeAndQueue(request, start: start, finish: finish)
        }
        if !admitted {
            metrics.rejected(.queueFull)
            finish(.failure(.queueFull(retryAfterSeconds: configuration.retryAfterSeconds)))
        }
    }

    /// Stops intake, lets queued and running work finish, and waits at most `timeout` seconds for it.
    /// Returns whether everything finished in time.
    public func drain(timeout: Double) -> Bool {
        intake.move(to: .draining)
        return retire(timeout: timeout)
    }

    /// A model reload replaced this service: run whatever is queued without waiting for fuller batches and
    /// wait at most `timeout` seconds for the requests it already admitted. Returns whether they all finished.
    /// The model is freed when the last reference to the service goes, after its last request.
    public func retire(timeout: Double) -> Bool {
        batcher.flush()
        return inFlight.wait(timeout: .now() + timeout) == .success
    }

    private func decodeAndQueue(_ request: ClipRequest, start: ServingInstant,
                                finish: @escaping @Sendable (Result<ClipResult, ServingError>) -> Void) {
        let task = request.task
        let wanted = task.modality.wanted(from: info.modalities).intersection(info.modalities)
        let decoded: DecodedWindows
        let decodeSeconds: Double
        do {
            guard !wanted.isEmpty else { throw unavailable(task.modality, clip: []) }
            let decodeStart = clock.now()
            decoded = try decoder.decode(request.bytes, want: wanted, crops: task.crops)
            decodeSeconds = clock.now().seconds(since: decodeStart)
            metrics.decodeDuration.recordNanoseconds(Int64(decodeSeconds * 1e9))
        } catch let error as ServingError {
            return finish(.failure(error))
        } catch {
            return finish(.failure(.undecodableClip("\(error)")))
        }
        let used = wanted.intersection(decoded.available)
        let satisfied: Bool
        switch task.modality {
        case .auto, .audio, .video: satisfied = !used.isEmpty  // `wanted` is already just the one asked for
        case .audiovisual: satisfied = used.count == 2
        }
        guard satisfied, !decoded.windows.isEmpty else {
            return finish(.failure(unavailable(task.modality, clip: Array(decoded.available), reason: decoded.unusableReason)))
        }
        let rows = Self.rows(decoded.windows, using: used, crops: task.crops, keepTokens: task.isEmbed)
        // Assembly reads rows window-major with one stride, so every window must bring the same crop count.
        guard rows.count % decoded.windows.count == 0, rows.count >= decoded.windows.count else {
            return finish(.failure(.undecodableClip("the video's windows decoded to different numbers of crops")))
        }
        let rowsPerWindow = rows.count / decoded.windows.count
        let deadline = start.adding(seconds: configuration.requestTimeoutSeconds)
        batcher.submit(kind: Self.kind(for: used), rows: rows, deadline: deadline) { [self] result in
            resultsQueue.async {
                finish(result.map { output in
                    var timings = Timings(decode: decodeSeconds, queue: output.queueSeconds,
                                          inference: output.inferenceSeconds)
                    timings.total = self.clock.now().seconds(since: start)
                    return self.assemble(task, decoded: decoded, used: used, outputs: output.rows,
                                         rowsPerWindow: rowsPerWindow, timings: timings)
                })
            }
        }
    }

    private func assemble(_ task: ClipTask, decoded: DecodedWindows, used: Set<Modality>, outputs: [RowOutput],
                          rowsPerWindow: Int, timings: Timings) -> ClipResult {
        let modalities = info.modalities.filter(used.contains)
        switch task {
        case .classify(let options):
            let perWindow = ResultAssembly.windowScores(outputs, cropsPerWindow: rowsPerWindow, backend: backend)
            let clip = ResultAssembly.aggregate(perWindow, by: options.aggregation)
            let timeline = options.timeline ? zip(decoded.windows, perWindow).map { window, scores in
                WindowScores(index: window.index, startSeconds: window.startSeconds,
                             labels: ResultAssembly.top(scores, k: options.topK, threshold: options.threshold,
                                                        labels: info.labels))
            } : nil
            return .classify(ClassifyResult(
                model: info.name, labelSet: info.labelSet, modalities: modalities,
                durationSeconds: decoded.durationSeconds, windowsUsed: perWindow.count,
                aggregation: options.aggregation,
                labels: ResultAssembly.top(clip, k: options.topK, threshold: options.threshold, labels: info.labels),
                timeline: timeline, timings: timings))
        case .embed(let options):
            let (pooled, windows) = ResultAssembly.embeddings(outputs, windows: decoded.windows, modalities: modalities,
                                                              keepTokens: options.tokens)
            return .embed(EmbedResult(model: info.name, modalities: modalities,
                                      durationSeconds: decoded.durationSeconds, pooled: pooled, windows: windows,
                                      timings: timings))
        }
    }

    private func unavailable(_ choice: ModalityChoice, clip: [Modality], reason: String? = nil) -> ServingError {
        .modalityUnavailable(requested: choice, clip: clip.sorted { $0.rawValue < $1.rawValue }, model: info.modalities,
                             reason: reason)
    }

    /// Window-major rows: for each window, one row per video crop (or one audio-only row).
    public static func rows(_ windows: [DecodedWindow], using used: Set<Modality>, crops: CropCount,
                     keepTokens: Bool) -> [BatchRow] {
        windows.flatMap { window -> [BatchRow] in
            let audio = used.contains(.audio) ? window.waveform : nil
            guard used.contains(.video) else { return [BatchRow(waveform: audio, frames: nil, keepTokens: keepTokens)] }
            return window.videoCrops.prefix(crops.rawValue).map {
                BatchRow(waveform: audio, frames: $0, keepTokens: keepTokens)
            }
        }
    }

    public static func kind(for modalities: Set<Modality>) -> InputKind {
        switch (modalities.contains(.audio), modalities.contains(.video)) {
        case (true, true): return .audiovisual
        case (false, true): return .video
        default: return .audio
        }
    }
}

extension ClipTask {
    var isEmbed: Bool {
        if case .embed = self { return true }
        return false
    }
}

/// Carries the warm-up result from the inference thread back to the waiting caller.
private final class ResultBox: @unchecked Sendable {
    private var result: Result<Double, ServingError> = .success(0)  // written before the semaphore signals
    func set(_ value: Result<Double, ServingError>) { result = value }
    func get() throws -> Double { try result.get() }
}
