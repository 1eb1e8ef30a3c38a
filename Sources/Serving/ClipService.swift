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
        /// The longest a request may take, from `submit` to its answer (decode, queue, inference); a request's
        /// own `timeoutSeconds` can only shorten it. Past it the answer is `deadlineExceeded`.
        public var requestTimeoutSeconds = 120.0
        public var decodeConcurrency = 2
        public var maxPendingDecodes = 64
        public var retryAfterSeconds = 1
        /// Recordings streamed at once; more are refused with 503.
        public var maxStreams = 2
        /// A stream's windows queued or running at once: its memory bound, and how far ahead of a newly arrived
        /// request it can be.
        public var streamWindowsInFlight = 2

        public init() {}
    }

    public let info: ModelInfo
    let backend: InferenceBackend
    let decoder: ClipDecoding
    let configuration: Configuration
    let clock: ServingClock
    private let logger: Logger
    let metrics: ServingMetrics
    private let decodePool: DecodePool
    private let worker: InferenceWorker
    let batcher: Batcher
    let resultsQueue = DispatchQueue(label: "avmae.results", attributes: .concurrent)
    /// Fires each request's deadline; a request answered before then is gone and its timer does nothing.
    private let deadlines = DispatchQueue(label: "avmae.deadlines")
    let inFlight = DispatchGroup()
    /// Streams' decode loops, each blocking its thread for the recording's length (see StreamingService.swift).
    let streamQueue = DispatchQueue(label: "avmae.stream", attributes: .concurrent)
    let streams: StreamRegistry
    let intake: Lifecycle

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
        self.streams = StreamRegistry(limit: configuration.maxStreams)
        self.decodePool = DecodePool(concurrency: configuration.decodeConcurrency,
                                     maxPending: configuration.maxPendingDecodes)
        self.worker = InferenceWorker(backend: backend, queue: inferenceQueue, clock: clock, logger: logger)
        self.batcher = Batcher(
            configuration: .init(maxBatch: configuration.maxBatch, maxDelaySeconds: configuration.maxDelaySeconds,
                                 maxQueuedRows: configuration.maxQueuedRows,
                                 maxBatchSeconds: configuration.maxBatchSeconds),
            worker: worker, load: inferenceQueue.load, clock: clock, retryAfterSeconds: configuration.retryAfterSeconds, logger: logger,
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

    /// Admits the request, or answers it at once when it cannot be admitted. `completion` is called exactly
    /// once, by the result, the request's deadline, or `abandon()` on the returned `PendingClip`.
    @discardableResult
    public func submit(_ request: ClipRequest,
                       completion: @escaping @Sendable (Result<ClipResult, ServingError>) -> Void) -> PendingClip {
        if let reason = intake.state.notReadyReason {
            metrics.rejected(.notReady)
            return .refused(.notReady(reason), completion: completion)
        }
        if case .classify = request.task, !info.hasHead {
            return .refused(.unsupportedTask(
                "model '\(info.name)' is \(info.kind.rawValue) and has no classification head; use /v1/embed"),
                completion: completion)
        }
        let start = clock.now()
        let deadline = start.adding(seconds: timeout(request.timeoutSeconds))
        let pending = admit(until: deadline, completion: completion)
        let admitted = decodePool.submit { [self] in
            decodeAndQueue(request, pending: pending, start: start, deadline: deadline)
        }
        if !admitted {
            metrics.rejected(.queueFull)
            pending.answer(.failure(.queueFull(retryAfterSeconds: configuration.retryAfterSeconds)))
        }
        return pending
    }

    /// The request's answer-once handle, counted in flight until answered. The deadline covers decoding and
    /// inference as well as the queue, so it has a timer of its own; a request cut short (deadline, client gone)
    /// takes its rows out of the queue.
    func admit<Output>(until deadline: ServingInstant,
                       completion: @escaping @Sendable (Result<Output, ServingError>) -> Void) -> PendingRequest<Output> {
        inFlight.enter()
        let pending = PendingRequest<Output>(
            completion: { [inFlight, metrics] result in
                if case .failure(.deadlineExceeded) = result { metrics.rejected(.deadline) }
                completion(result)
                inFlight.leave()
            },
            cutShort: { [batcher, metrics] why, stage in
                let counted: (ServingMetrics.Stage?) -> Void = { stage in
                    if why == .clientGone, let stage { metrics.clientGone(during: stage) }
                }
                switch stage {
                case .decode: counted(.decode)
                case .queue(let id): batcher.withdraw(id) { counted($0) }
                case .answered: break
                }
            })
        deadlines.asyncAfter(deadline: deadline.dispatchTime) { [weak pending, configuration] in
            pending?.cut(.deadlineExceeded(retryAfterSeconds: configuration.retryAfterSeconds))
        }
        return pending
    }

    /// Stops intake, lets queued and running work finish, and waits at most `timeout` seconds for it.
    /// Returns whether everything finished in time.
    public func drain(timeout: Double) -> Bool {
        intake.move(to: .draining)
        // An hour-long stream would outlast any drain timeout: it ends at its next window with an error line.
        streams.cancelAll(.notReady(.draining))
        return retire(timeout: timeout)
    }

    /// A model reload replaced this service: run whatever is queued without waiting for fuller batches and
    /// wait at most `timeout` seconds for the requests it already admitted. Returns whether they all finished.
    /// The model is freed when the last reference to the service goes, after its last request.
    public func retire(timeout: Double) -> Bool {
        batcher.flush()
        return inFlight.wait(timeout: .now() + timeout) == .success
    }

    private func decodeAndQueue(_ request: ClipRequest, pending: PendingClip, start: ServingInstant,
                                deadline: ServingInstant) {
        // Answered while it waited for a decode thread (deadline, or the client left): nothing to do.
        guard !pending.isAnswered else { return }
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
            pending.answer(.failure(error))
            return
        } catch {
            pending.answer(.failure(.undecodableClip("\(error)")))
            return
        }
        let used = wanted.intersection(decoded.available)
        guard task.modality.isSatisfied(by: used), !decoded.windows.isEmpty else {
            pending.answer(.failure(unavailable(task.modality, clip: Array(decoded.available),
                                                reason: decoded.unusableReason)))
            return
        }
        let rows = Self.rows(decoded.windows, using: used, crops: task.crops, keepTokens: task.keepsTokens)
        // Assembly reads rows window-major with one stride, so every window must bring the same crop count.
        guard rows.count % decoded.windows.count == 0, rows.count >= decoded.windows.count else {
            pending.answer(.failure(.undecodableClip("the video's windows decoded to different numbers of crops")))
            return
        }
        let rowsPerWindow = rows.count / decoded.windows.count
        // False when the request was answered during the decode: its rows never reach the model.
        _ = pending.enqueue {
            batcher.submit(kind: Self.kind(for: used), rows: rows, deadline: deadline) { [self] result in
                resultsQueue.async {
                    guard !pending.isAnswered else { return }
                    pending.answer(result.map { output in
                        var timings = Timings(decode: decodeSeconds, queue: output.queueSeconds,
                                              inference: output.inferenceSeconds)
                        timings.total = self.clock.now().seconds(since: start)
                        return self.assemble(task, decoded: decoded, used: used, outputs: output.rows,
                                             rowsPerWindow: rowsPerWindow, timings: timings)
                    })
                }
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
                model: info.name, modelVersion: info.version, labelSet: info.labelSet, modalities: modalities,
                durationSeconds: decoded.durationSeconds, windowsUsed: perWindow.count,
                aggregation: options.aggregation,
                labels: ResultAssembly.top(clip, k: options.topK, threshold: options.threshold, labels: info.labels),
                timeline: timeline, timings: timings))
        case .embed(let options):
            let (pooled, windows) = ResultAssembly.embeddings(outputs, windows: decoded.windows, modalities: modalities,
                                                              keepTokens: options.tokens)
            return .embed(EmbedResult(model: info.name, modelVersion: info.version, modalities: modalities,
                                      durationSeconds: decoded.durationSeconds, pooled: pooled, windows: windows,
                                      timings: timings))
        case .outputs(let options):
            let logits = ResultAssembly.windowLogits(outputs, cropsPerWindow: rowsPerWindow)
            let hasHead = outputs.first?.logits != nil
            let pooled = options.embeddings
                ? ResultAssembly.embeddings(outputs, windows: decoded.windows, modalities: modalities, keepTokens: false).pooled
                : [:]
            return .outputs(RawOutputs(
                model: info.name, rows: 1, modalities: modalities,
                logits: hasHead ? ResultAssembly.aggregate(logits, by: .mean) : nil,
                probabilities: hasHead ? ResultAssembly.aggregate(logits.map { backend.scores(logits: $0) }, by: .mean) : nil,
                embeddings: pooled, timings: timings))
        }
    }

    /// Seconds a request may wait for the model: the server's limit, or the client's own if that is shorter.
    func timeout(_ requested: Double?) -> Double {
        min(requested ?? configuration.requestTimeoutSeconds, configuration.requestTimeoutSeconds)
    }

    func unavailable(_ choice: ModalityChoice, clip: [Modality], reason: String? = nil) -> ServingError {
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
    var keepsTokens: Bool {
        switch self {
        case .classify: return false
        case .embed: return true
        case .outputs(let options): return options.embeddings
        }
    }
}

/// Carries the warm-up result from the inference thread back to the waiting caller.
private final class ResultBox: @unchecked Sendable {
    private var result: Result<Double, ServingError> = .success(0)  // written before the semaphore signals
    func set(_ value: Result<Double, ServingError>) { result = value }
    func get() throws -> Double { try result.get() }
}
