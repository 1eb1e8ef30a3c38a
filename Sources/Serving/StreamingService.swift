import AVMAE
import Dispatch
import Foundation
import Media

/// Streaming on the serving core: a long recording decoded window by window, each window queued as a job of its
/// own (one row, or one per video crop) beside other requests' rows, and answered as soon as it is computed.
///
/// Bounded memory: a stream decodes its next window only when fewer than `streamWindowsInFlight` of its windows
/// are queued or running, so it holds that many windows plus the decoder's piece, whatever its length. Short
/// requests are not starved either way: the batcher shares the model between requests and streams' windows by
/// time (`BatchingStateMachine.leader`), so a request waits behind at most one batch of windows. Each stream runs
/// on a thread of its own (`avmae.stream`), at most `maxStreams` of them, so the decode pool stays free for short
/// requests.
extension ClipService {
    public func stream(_ request: StreamRequest, cancellation: StreamCancellation,
                       events: @escaping @Sendable (StreamEvent) -> Void) {
        if let reason = intake.state.notReadyReason {
            metrics.rejected(.notReady)
            return events(.failed(.notReady(reason), window: 0))
        }
        if let refusal = streamRefusal(request.task) {
            return events(.failed(refusal, window: 0))
        }
        guard streams.admit(cancellation) else {
            metrics.rejected(.queueFull)
            return events(.failed(.tooManyStreams(limit: streams.limit, retryAfterSeconds: configuration.retryAfterSeconds),
                                  window: 0))
        }
        inFlight.enter()
        streamQueue.async { [self] in
            run(request, cancellation: cancellation, events: events)
            streams.remove(cancellation)
            inFlight.leave()
        }
    }

    private func streamRefusal(_ task: ClipTask) -> ServingError? {
        guard case .classify = task, !info.hasHead else { return nil }
        return .unsupportedTask("model '\(info.name)' is \(info.kind.rawValue) and has no classification head; use /v1/embed")
    }

    private func run(_ request: StreamRequest, cancellation: StreamCancellation,
                     events: @escaping @Sendable (StreamEvent) -> Void) {
        let start = clock.now()
        let task = request.task
        let wanted = task.modality.wanted(from: info.modalities).intersection(info.modalities)
        let opened = open(request.source, want: wanted, task: task)
        let used = (try? opened.get()).map { wanted.intersection($0.available) } ?? []
        let stream = StreamRun(task: task, info: info, modalities: info.modalities.filter(used.contains), backend: backend,
                               events: events)
        let source: WindowSource
        switch opened {
        case .success(let opened) where task.modality.isSatisfied(by: used):
            source = opened
        case .success(let opened):
            opened.close()
            stream.fail(unavailable(task.modality, clip: Array(opened.available)), window: 0)
            return stream.finish(durationSeconds: 0, timings: Timings())
        case .failure(let error):
            stream.fail(error, window: 0)
            return stream.finish(durationSeconds: 0, timings: Timings())
        }
        defer { source.close() }
        let slots = DispatchSemaphore(value: configuration.streamWindowsInFlight)
        let pending = DispatchGroup()
        let totals = StreamTotals()
        var index = 0
        while !stream.hasFailed {
            slots.wait()
            if let why = cancellation.cancelledBecause {
                slots.signal()
                stream.fail(why, window: index)
                break
            }
            let decodeStart = clock.now()
            let window: DecodedWindow?
            do {
                window = try source.next()
            } catch {
                slots.signal()
                stream.fail(Self.servingError(error), window: index)
                break
            }
            totals.add(decode: clock.now().seconds(since: decodeStart))
            guard let window else {
                slots.signal()
                break
            }
            let rows = Self.rows([window], using: used, crops: task.crops, keepTokens: task.keepsTokens)
            pending.enter()
            batcher.submit(kind: Self.kind(for: used), rows: rows,
                           deadline: clock.now().adding(seconds: configuration.requestTimeoutSeconds),
                           admitted: true) { [resultsQueue] result in
                resultsQueue.async {
                    if case .success(let output) = result {
                        totals.add(queue: output.queueSeconds, inference: output.inferenceSeconds)
                    }
                    stream.deliver(index: window.index, startSeconds: window.startSeconds,
                                   output: result.flatMap { output in
                                       output.rows.isEmpty ? .failure(.inferenceFailed("no output row")) : .success(output.rows)
                                   })
                    slots.signal()
                    pending.leave()
                }
            }
            index += 1
        }
        pending.wait()
        var timings = totals.timings
        timings.total = clock.now().seconds(since: start)
        stream.finish(durationSeconds: source.decodedSeconds, timings: timings)
    }

    /// The recording's decoder, or why it cannot be read; a missing stream is answered with this request's and
    /// this model's modalities.
    private func open(_ source: MediaSource, want: Set<Modality>, task: ClipTask) -> Result<WindowSource, ServingError> {
        do {
            return .success(try decoder.openStream(source, want: want, crops: task.crops))
        } catch ServingError.modalityUnavailable(_, _, _, let reason) {
            return .failure(unavailable(task.modality, clip: [], reason: reason))
        } catch {
            return .failure(Self.servingError(error))
        }
    }

    private static func servingError(_ error: Error) -> ServingError {
        error as? ServingError ?? .undecodableClip("\(error)")
    }
}

/// Where a stream's time went, summed over its windows from the threads that measure it.
private final class StreamTotals: @unchecked Sendable {
    private let lock = NSLock()
    private var sums = Timings()  // guarded by lock

    func add(decode seconds: Double) {
        lock.withLock { sums.decode += seconds }
    }

    func add(queue: Double, inference: Double) {
        lock.withLock {
            sums.queue += queue
            sums.inference += inference
        }
    }

    var timings: Timings { lock.withLock { sums } }
}
