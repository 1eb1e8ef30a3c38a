import Dispatch
import Foundation
import Logging
import Metrics

/// The Dispatch shell around `BatchingStateMachine`: it owns the state machine, the rows waiting for the model,
/// the one wake-up timer and the inference worker, and carries out the machine's actions.
///
/// Threading: all state lives on `stateQueue`; the worker calls back onto it. Drain path: `flush` makes every
/// queued row run without waiting for fuller batches; the service then waits for its in-flight requests.
final class Batcher: @unchecked Sendable {
    struct Output: Sendable {
        var rows: [RowOutput]
        var queueSeconds: Double
        var inferenceSeconds: Double
    }
    typealias Completion = @Sendable (Result<Output, ServingError>) -> Void

    private struct Pending {
        var rows: [BatchRow]
        var outputs: [RowOutput?]
        var enqueuedAt: ServingInstant
        var startedAt: ServingInstant?
        var inferenceSeconds: Double = 0
        var completion: Completion
    }

    private let stateQueue = DispatchQueue(label: "avmae.batcher")
    private let timer: DispatchSourceTimer
    private let worker: InferenceWorker
    private let clock: ServingClock
    private let retryAfterSeconds: Int
    private let logger: Logger
    private let metrics: ServingMetrics
    /// Where this model's queued work is published for, and the other models' read by, admission.
    private let load: InferenceLoad
    private let loadID: UInt64
    // Guarded by stateQueue:
    private var machine: BatchingStateMachine
    private var pending: [UInt64: Pending] = [:]
    /// Job ids are handed out at once by `submit`, so a caller can withdraw a job it has just submitted.
    private let ids = NSLock()
    private var lastID: UInt64 = 0  // guarded by ids

    init(configuration: BatchingStateMachine.Configuration, worker: InferenceWorker, load: InferenceLoad,
         clock: ServingClock, retryAfterSeconds: Int, logger: Logger, metrics: ServingMetrics) {
        self.machine = BatchingStateMachine(configuration: configuration)
        self.load = load
        self.loadID = load.register()
        self.worker = worker
        self.clock = clock
        self.retryAfterSeconds = retryAfterSeconds
        self.logger = logger
        self.metrics = metrics
        self.timer = DispatchSource.makeTimerSource(queue: stateQueue)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.perform(self.machine.tick(now: self.clock.now()))
        }
        timer.activate()
    }

    deinit {
        timer.cancel()
        load.remove(loadID)
    }

    /// Queues `rows` of one request; `completion` gets every row's output in order, or why it was dropped.
    /// Returns the job's id, for `withdraw`. `admitted`: a window of a stream under way (see
    /// `BatchingStateMachine.Job.admitted`).
    @discardableResult
    func submit(kind: InputKind, rows: [BatchRow], deadline: ServingInstant, admitted: Bool = false,
                completion: @escaping Completion) -> UInt64 {
        let id = ids.withLock {
            lastID += 1
            return lastID
        }
        stateQueue.async { [self] in
            let now = clock.now()
            pending[id] = Pending(rows: rows, outputs: Array(repeating: nil, count: rows.count), enqueuedAt: now,
                                  completion: completion)
            perform(machine.submit(.init(id: id, kind: kind, rows: rows.count, deadline: deadline, admitted: admitted),
                                   now: now, beside: load.others(than: loadID)))
        }
        return id
    }

    /// Nobody waits for job `id` any more: its rows that have not started are dropped (rows in the running
    /// batch finish, unread), and its completion is not called. `done` gets where the job was then: `.queue`
    /// if none of its rows had started, `.inference` if some had, nil if it had already been answered.
    func withdraw(_ id: UInt64, done: @escaping @Sendable (ServingMetrics.Stage?) -> Void) {
        stateQueue.async { [self] in
            guard let job = pending.removeValue(forKey: id) else { return done(nil) }
            perform(machine.withdraw(jobID: id, now: clock.now()))
            done(job.startedAt == nil ? .queue : .inference)
        }
    }

    /// Shutdown: stop holding rows back for fuller batches.
    func flush() {
        stateQueue.async { [self] in
            perform(machine.flush(now: clock.now()))
        }
    }

    private func perform(_ actions: [BatchingStateMachine.Action]) {
        for action in actions {
            switch action {
            case .reject(let id, let estimatedWait):
                metrics.rejected(.queueFull)
                fail(id, .queueFull(retryAfterSeconds: estimatedWait.map { max(1, Int($0.rounded(.up))) } ?? retryAfterSeconds))
            case .expire(let id):
                // Counted by the service, which also answers deadlines that pass outside the queue.
                fail(id, .deadlineExceeded(retryAfterSeconds: retryAfterSeconds))
            case .run(let batch):
                start(batch)
            case .wake(let instant):
                timer.schedule(deadline: instant.dispatchTime, leeway: .microseconds(200))
            }
        }
        let current = machine.load(now: clock.now())
        load.publish(loadID, current)
        metrics.queueDepth.record(machine.queuedRows)
        metrics.queueEstimatedSeconds.record(current.queuedSeconds)
    }

    /// A timed run outside the queue (warm-up) teaches the admission estimate its cost per row.
    func observe(kind: InputKind, rows: Int, seconds: Double) {
        stateQueue.sync { machine.observe(kind: kind, rows: rows, seconds: seconds) }
    }

    private func fail(_ id: UInt64, _ error: ServingError) {
        pending.removeValue(forKey: id)?.completion(.failure(error))
    }

    private func start(_ batch: BatchingStateMachine.Batch) {
        let now = clock.now()
        // Jobs answered since they were queued (an earlier failed batch, a withdrawal) have no rows to run.
        let live = batch.slices.filter { pending[$0.jobID] != nil }
        var rows: [BatchRow] = []
        rows.reserveCapacity(batch.rowCount)
        for slice in live {
            if pending[slice.jobID]!.startedAt == nil { pending[slice.jobID]!.startedAt = now }
            rows += pending[slice.jobID]!.rows[slice.rows]
        }
        guard !rows.isEmpty else {
            stateQueue.async { self.perform(self.machine.batchCompleted(now: self.clock.now(), seconds: 0)) }
            return
        }
        metrics.batchSize.record(rows.count)
        logger.debug("batch", metadata: ["batch.size": "\(rows.count)", "batch.kind": "\(batch.kind.rawValue)"])
        worker.run(rows, kind: batch.kind) { [self] result, seconds in
            stateQueue.async { self.finish(live, result: result, seconds: seconds) }
        }
    }

    /// `slices` are the ones that ran, in the order of the outputs; a job withdrawn meanwhile is skipped.
    private func finish(_ slices: [BatchingStateMachine.Slice], result: Result<[RowOutput], ServingError>,
                        seconds: Double) {
        metrics.inferenceDuration.recordNanoseconds(Int64(seconds * 1e9))
        var offset = 0
        for slice in slices {
            defer { offset += slice.rows.count }
            guard pending[slice.jobID] != nil else { continue }
            switch result {
            case .failure(let error):
                fail(slice.jobID, error)
            case .success(let outputs):
                pending[slice.jobID]!.inferenceSeconds += seconds
                for (row, output) in zip(slice.rows, outputs[offset..<(offset + slice.rows.count)]) {
                    pending[slice.jobID]!.outputs[row] = output
                }
                completeIfDone(slice.jobID)
            }
        }
        perform(machine.batchCompleted(now: clock.now(), seconds: seconds))
    }

    private func completeIfDone(_ id: UInt64) {
        guard let job = pending[id], job.outputs.allSatisfy({ $0 != nil }) else { return }
        pending.removeValue(forKey: id)
        let queueSeconds = (job.startedAt ?? job.enqueuedAt).seconds(since: job.enqueuedAt)
        metrics.queueWait.recordNanoseconds(Int64(queueSeconds * 1e9))
        job.completion(.success(Output(rows: job.outputs.map { $0! }, queueSeconds: queueSeconds,
                                       inferenceSeconds: job.inferenceSeconds)))
    }
}
