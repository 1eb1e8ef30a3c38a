import AVMAE
import Dispatch
import Foundation

/// One stream's answers, put in window order and sent one event at a time, with the whole recording's aggregate
/// kept as running sums (constant memory, however many windows). Windows may come back from the model out of
/// order (the results queue is concurrent); each is held only until those before it are in.
///
/// Threading: `deliver` and `fail` come from any thread; events leave on one serial queue, in order.
final class StreamRun: @unchecked Sendable {
    private let task: ClipTask
    private let info: ModelInfo
    /// The modalities the answers come from (the model's, in its order, that the recording has).
    private let modalities: [Modality]
    private let backend: InferenceBackend
    private let events: @Sendable (StreamEvent) -> Void
    private let emitQueue = DispatchQueue(label: "avmae.stream.events")
    private let lock = NSLock()
    // Guarded by lock:
    private var arrived: [Int: Result<StreamedWindow, ServingError>] = [:]
    private var sent = 0
    private var failure: (error: ServingError, window: Int)?
    /// Per class: the sum (mean) or the maximum (max) of the window probabilities so far. // (C)
    private var scores: [Float] = []
    /// Per modality: the sum of the windows' pooled embeddings so far. // (D)
    private var pooled: [Modality: [Float]] = [:]

    init(task: ClipTask, info: ModelInfo, modalities: [Modality], backend: InferenceBackend,
         events: @escaping @Sendable (StreamEvent) -> Void) {
        self.task = task
        self.info = info
        self.modalities = modalities
        self.backend = backend
        self.events = events
    }

    var hasFailed: Bool { lock.withLock { failure != nil } }

    /// Window `index` came back from the model (its rows: one, or one per crop), or failed there.
    func deliver(index: Int, startSeconds: Double, output: Result<[RowOutput], ServingError>) {
        let window = output.map { answer(index: index, startSeconds: startSeconds, output: $0) }
        lock.withLock {
            arrived[index] = window
            sendReady()
        }
    }

    /// The stream cannot go on at window `index` (decoding failed, or the reader went away); windows before it
    /// still go out first.
    func fail(_ error: ServingError, window index: Int) {
        lock.withLock {
            arrived[index] = .failure(error)
            sendReady()
        }
    }

    /// Every window has been delivered: the summary, unless the stream failed.
    func finish(durationSeconds: Double, timings: Timings) {
        lock.withLock {
            if let failure {
                emit(.failed(failure.error, window: failure.window))
                return
            }
            emit(.finished(summary(durationSeconds: durationSeconds, timings: timings), windows: sent))
        }
    }

    private func sendReady() {
        while failure == nil, let next = arrived.removeValue(forKey: sent) {
            switch next {
            case .success(let window):
                accumulate(window)
                emit(.window(window))
                sent += 1
            case .failure(let error):
                failure = (error, sent)
                arrived = [:]
            }
        }
    }

    private func emit(_ event: StreamEvent) {
        emitQueue.async { [events] in events(event) }
    }

    private func answer(index: Int, startSeconds: Double, output rows: [RowOutput]) -> StreamedWindow {
        var window = StreamedWindow(index: index, startSeconds: startSeconds)
        switch task {
        case .classify(let options):
            let probabilities = ResultAssembly.windowScores(rows, cropsPerWindow: rows.count, backend: backend)[0]
            window.scores = probabilities
            window.labels = ResultAssembly.top(probabilities, k: options.topK, threshold: options.threshold,
                                               labels: info.labels)
        case .embed, .outputs:  // /v2 answers are not streamed; .outputs never reaches a stream
            // Embeddings are asked for one crop: a window is one row.
            window.pooled = rows[0].tokens.filter { modalities.contains($0.key) }.mapValues { $0.meanOfRows() }
        }
        return window
    }

    private func accumulate(_ window: StreamedWindow) {
        if let probabilities = window.scores {
            if scores.isEmpty {
                scores = probabilities
            } else if case .classify(let options) = task, options.aggregation == .max {
                for c in scores.indices { scores[c] = max(scores[c], probabilities[c]) }
            } else {
                for c in scores.indices { scores[c] += probabilities[c] }
            }
        }
        for (modality, vector) in window.pooled ?? [:] {
            guard var sum = pooled[modality] else { pooled[modality] = vector; continue }
            for d in sum.indices { sum[d] += vector[d] }
            pooled[modality] = sum
        }
    }

    private func summary(durationSeconds: Double, timings: Timings) -> ClipResult {
        let count = Float(max(sent, 1))
        switch task {
        case .classify(let options):
            let clip = options.aggregation == .mean ? scores.map { $0 / count } : scores
            return .classify(ClassifyResult(
                model: info.name, modelVersion: info.version, labelSet: info.labelSet, modalities: modalities,
                durationSeconds: durationSeconds,
                windowsUsed: sent, aggregation: options.aggregation,
                labels: ResultAssembly.top(clip, k: options.topK, threshold: options.threshold, labels: info.labels),
                timeline: nil, timings: timings))
        case .embed, .outputs:
            return .embed(EmbedResult(model: info.name, modelVersion: info.version, modalities: modalities,
                                      durationSeconds: durationSeconds,
                                      pooled: pooled.mapValues { $0.map { $0 / count } }, windows: [], timings: timings))
        }
    }
}
