import AVMAE
import Dispatch
import Foundation
import Media

/// Streaming on the serving core: a long recording decoded window by window, each window queued as its own
/// one-row job beside other requests' rows, and answered as soon as it is computed.
///
/// Bounded memory: a stream decodes its next window only when fewer than `streamWindowsInFlight` of its windows
/// are queued or running, so it holds that many windows plus the decoder's piece, whatever its length. Short
/// requests are not starved either way: the batcher lets requests and streams' windows take turns leading a
/// batch (`BatchingStateMachine`), so a request waits behind at most one batch of windows. Each stream runs on a thread of its own
/// (`avmae.stream`), at most `maxStreams` of them, so the decode pool stays free for short requests.
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

    /// A stream is decoded for its sound: the model must listen, and the request must not ask for pictures.
    private func streamRefusal(_ task: ClipTask) -> ServingError? {
        if case .classify = task, !info.hasHead {
            return .unsupportedTask("model '\(info.name)' is \(info.kind.rawValue) and has no classification head; use /v1/embed")
        }
        guard info.modalities.contains(.audio), task.modality == .auto || task.modality == .audio else {
            return .modalityUnavailable(requested: task.modality, clip: [], model: info.modalities,
                                        reason: "a streamed recording is decoded for its sound only")
        }
        return nil
    }

    private func run(_ request: StreamRequest, cancellation: StreamCancellation,
                     events: @escaping @Sendable (StreamEvent) -> Void) {
        let start = clock.now()
        let stream = StreamRun(task: request.task, info: info, backend: backend, events: events)
        let source: WindowSource
        do {
            source = try decoder.openStream(request.source)
        } catch {
            stream.fail(Self.servingError(error), window: 0)
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
            let row = BatchRow(waveform: window.waveform, frames: nil, keepTokens: request.task.keepsTokens)
            pending.enter()
            batcher.submit(kind: .audio, rows: [row], deadline: clock.now().adding(seconds: configuration.requestTimeoutSeconds),
                           admitted: true) { [resultsQueue] result in
                resultsQueue.async {
                    if case .success(let output) = result {
                        totals.add(queue: output.queueSeconds, inference: output.inferenceSeconds)
                    }
                    stream.deliver(index: window.index, startSeconds: window.startSeconds,
                                   output: result.flatMap { output in
                                       output.rows.first.map { .success($0) } ?? .failure(.inferenceFailed("no output row"))
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
