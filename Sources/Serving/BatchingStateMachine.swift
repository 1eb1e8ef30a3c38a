import DequeModule

/// Which model branches a batch row feeds; rows batch together only when this matches, because the model runs
/// one input shape per call.
public enum InputKind: String, Hashable, Sendable {
    case audio, video, audiovisual
}

/// Dynamic batching as a pure state machine: events in, actions out, time passed in explicitly.
/// It decides *what* to run and *when*; the `Batcher` shell carries the actions out on Dispatch queues.
///
/// A job is one request's rows (windows x crops), or one window of a stream. Rows of jobs with the same `InputKind` are
/// grouped, oldest job first (requests and streams' windows share the model by time, see `leader`), into batches
/// of at most `maxBatch` rows, and of fewer when that kind's learned cost says a full batch would run longer than
/// `maxBatchSeconds`: at ViT-Large size one row's products are already large enough that a batch saves a few percent of
/// model time, and every row in it waits for the whole batch. A batch starts when the worker is free and either a full
/// batch is waiting or the oldest job has waited `maxDelay`. A job that has not started by its deadline is dropped. One
/// batch runs at a time (one inference worker owns the BLAS threads). Once `flush` is called (shutdown), nothing waits
/// for a fuller batch any more; jobs still arrive from requests admitted earlier.
///
/// Admission is by cost as well as by rows: the machine learns each kind's seconds per row (from warm-up and from
/// every batch that completes) and keeps the queue's estimated work in seconds. A job whose deadline would pass
/// before the work ahead of it is done is refused at once, with that estimate as its retry-after, instead of
/// waiting in the queue only to expire: at ViT-Large size a few queued video rows are already minutes. The work
/// ahead includes other models' that share the inference thread (`wait(own:beside:)`), passed in by the caller.
public struct BatchingStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var maxBatch: Int
        public var maxDelaySeconds: Double
        /// Rows allowed to wait; a job that would go past it is rejected (unless the queue is empty, so one
        /// long clip can always get through).
        public var maxQueuedRows: Int
        /// Estimated model seconds a batch may grow to; one row always runs, however slow.
        public var maxBatchSeconds: Double

        public init(maxBatch: Int, maxDelaySeconds: Double, maxQueuedRows: Int, maxBatchSeconds: Double = .infinity) {
            precondition(maxBatch >= 1 && maxQueuedRows >= 1 && maxDelaySeconds >= 0 && maxBatchSeconds > 0,
                         "invalid batching configuration")
            self.maxBatch = maxBatch
            self.maxDelaySeconds = maxDelaySeconds
            self.maxQueuedRows = maxQueuedRows
            self.maxBatchSeconds = maxBatchSeconds
        }
    }

    public struct Job: Sendable, Equatable {
        public var id: UInt64
        public var kind: InputKind
        public var rows: Int
        public var deadline: ServingInstant
        /// A window of a stream already under way: it is queued whatever the queue holds and never expires, since
        /// refusing it would cut off an answer half sent. Its stream keeps at most a few such rows waiting, so
        /// the queue stays bounded, and other requests' rows interleave with its windows.
        public var admitted: Bool

        public init(id: UInt64, kind: InputKind, rows: Int, deadline: ServingInstant, admitted: Bool = false) {
            precondition(rows >= 1, "a job has at least one row")
            self.id = id
            self.kind = kind
            self.rows = rows
            self.deadline = deadline
            self.admitted = admitted
        }
    }

    /// Rows `rows` of job `jobID` go into this batch.
    public struct Slice: Sendable, Equatable {
        public var jobID: UInt64
        public var rows: Range<Int>

        public init(jobID: UInt64, rows: Range<Int>) {
            self.jobID = jobID
            self.rows = rows
        }
    }

    public struct Batch: Sendable, Equatable {
        public var kind: InputKind
        public var slices: [Slice]

        public init(kind: InputKind, slices: [Slice]) {
            self.kind = kind
            self.slices = slices
        }

        public var rowCount: Int { slices.reduce(0) { $0 + $1.rows.count } }
    }

    /// What one model's queue puts on the shared inference thread: its estimated work, and the longest batch it
    /// would run (its largest kind's batch at the learned cost).
    public struct Load: Sendable, Equatable {
        public var queuedSeconds: Double
        public var longestBatchSeconds: Double

        public init(queuedSeconds: Double, longestBatchSeconds: Double) {
            self.queuedSeconds = queuedSeconds
            self.longestBatchSeconds = longestBatchSeconds
        }
    }

    public enum Action: Sendable, Equatable {
        /// The queue is full, or its estimated work would outlast the job's deadline; answer the job with 503.
        /// `retryAfterSeconds` is the estimated wait when the costs are known.
        case reject(jobID: UInt64, retryAfterSeconds: Double?)
        /// The job waited past its deadline without starting; answer it with 503.
        case expire(jobID: UInt64)
        /// Hand this batch to the inference worker, then report `batchCompleted`.
        case run(Batch)
        /// Call `tick` at this instant (replaces any earlier wake-up).
        case wake(at: ServingInstant)
    }

    private enum Mode: Sendable { case batching, flushing }
    private enum Worker: Sendable {
        case idle
        case busy(kind: InputKind, rows: Int, since: ServingInstant)
    }

    private struct Waiting: Sendable {
        var job: Job
        var enqueuedAt: ServingInstant
        var nextRow = 0
        var remaining: Int { job.rows - nextRow }
    }

    public let configuration: Configuration
    private var mode = Mode.batching
    private var worker = Worker.idle
    private var queue: Deque<Waiting> = []
    /// Model seconds (at the learned costs) that request-led batches have run beyond window-led ones while both
    /// were waiting; positive when requests are ahead (see `leader`).
    private var requestsAhead = 0.0
    public private(set) var queuedRows = 0
    /// Learned seconds per row of each kind; a kind not yet seen adds nothing to the estimate.
    public private(set) var rowSeconds: [InputKind: Double] = [:]

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Nothing waiting and nothing running.
    public var isIdle: Bool {
        guard queue.isEmpty, case .idle = worker else { return false }
        return true
    }

    /// Seconds until the worker would be free to start a job submitted now: the running batch's remaining
    /// estimate plus every queued row's.
    public func estimatedWaitSeconds(now: ServingInstant) -> Double {
        var seconds = queue.reduce(0) { $0 + Double($1.remaining) * (rowSeconds[$1.job.kind] ?? 0) }
        if case .busy(let kind, let rows, let since) = worker {
            seconds += max(0, Double(rows) * (rowSeconds[kind] ?? 0) - now.seconds(since: since))
        }
        return seconds
    }

    /// This queue's load on the shared inference thread, for the other models' admission.
    public func load(now: ServingInstant) -> Load {
        Load(queuedSeconds: estimatedWaitSeconds(now: now),
             longestBatchSeconds: rowSeconds.map { Double(batchLimit(for: $0.key)) * $0.value }.max() ?? 0)
    }

    /// The wait of a job submitted now, when `own` seconds of this model's work are ahead of it and `others` share
    /// the inference thread. Models take turns a batch at a time (each keeps at most one batch on the thread), so
    /// while this model's queue runs, another busy model runs about as long again, plus the batch it may be
    /// running: never more than it has queued.
    public static func wait(own: Double, beside others: [Load]) -> Double {
        own + others.reduce(0) { $0 + min($1.queuedSeconds, own + $1.longestBatchSeconds) }
    }

    /// Rows a batch of `kind` takes: `maxBatch`, or as many as fit in `maxBatchSeconds` at the kind's learned cost.
    public func batchLimit(for kind: InputKind) -> Int {
        guard let perRow = rowSeconds[kind] else { return configuration.maxBatch }
        let fitting = (configuration.maxBatchSeconds / perRow).rounded(.down)
        return fitting >= Double(configuration.maxBatch) ? configuration.maxBatch : max(1, Int(fitting))
    }

    /// A measured run of `rows` rows of `kind` (warm-up, or a completed batch). Recent runs weigh more, so the
    /// estimate follows the machine's load without jumping on one outlier.
    public mutating func observe(kind: InputKind, rows: Int, seconds: Double) {
        guard rows > 0, seconds > 0 else { return }
        let perRow = seconds / Double(rows)
        rowSeconds[kind] = rowSeconds[kind].map { 0.7 * $0 + 0.3 * perRow } ?? perRow
    }

    /// `beside`: the loads of the other models sharing the inference thread, which admission counts as well.
    public mutating func submit(_ job: Job, now: ServingInstant, beside others: [Load] = []) -> [Action] {
        let wait = Self.wait(own: estimatedWaitSeconds(now: now), beside: others)
        let retryAfter = rowSeconds.isEmpty ? nil : wait
        if job.admitted {
            queue.append(Waiting(job: job, enqueuedAt: now))
            queuedRows += job.rows
            return step(now: now)
        }
        if queuedRows > 0 && queuedRows + job.rows > configuration.maxQueuedRows {
            return [.reject(jobID: job.id, retryAfterSeconds: retryAfter)]
        }
        if wait > 0, now.adding(seconds: wait) > job.deadline {
            return [.reject(jobID: job.id, retryAfterSeconds: retryAfter)]
        }
        queue.append(Waiting(job: job, enqueuedAt: now))
        queuedRows += job.rows
        return step(now: now)
    }

    /// A wake-up asked for by `.wake(at:)` arrived.
    public mutating func tick(now: ServingInstant) -> [Action] {
        step(now: now)
    }

    /// The running batch finished; `seconds` is the worker's own measure of it (else the time since it started).
    public mutating func batchCompleted(now: ServingInstant, seconds: Double? = nil) -> [Action] {
        guard case .busy(let kind, let rows, let since) = worker else { preconditionFailure("batchCompleted without a running batch") }
        observe(kind: kind, rows: rows, seconds: seconds ?? now.seconds(since: since))
        worker = .idle
        return step(now: now)
    }

    /// Nobody waits for the job any more (its client left, or its deadline passed while it was decoding or
    /// running): its rows that have not started are dropped. Rows in the running batch finish.
    public mutating func withdraw(jobID: UInt64, now: ServingInstant) -> [Action] {
        if let index = queue.firstIndex(where: { $0.job.id == jobID }) {
            queuedRows -= queue[index].remaining
            queue.remove(at: index)
        }
        return step(now: now)
    }

    /// From now on every queued row runs as soon as the worker is free, without waiting for a fuller batch.
    public mutating func flush(now: ServingInstant) -> [Action] {
        mode = .flushing
        return step(now: now)
    }

    private mutating func step(now: ServingInstant) -> [Action] {
        var actions = expire(now: now)
        if case .idle = worker, let batch = nextBatch(now: now) {
            worker = .busy(kind: batch.kind, rows: batch.rowCount, since: now)
            actions.append(.run(batch))
        }
        if let wake = nextWake() {
            actions.append(.wake(at: wake))
        }
        return actions
    }

    private mutating func expire(now: ServingInstant) -> [Action] {
        var actions: [Action] = []
        queue.removeAll { waiting in
            // A job that already has rows in a batch finishes; dropping half of it would waste that work.
            guard waiting.nextRow == 0, !waiting.job.admitted, waiting.job.deadline <= now else { return false }
            actions.append(.expire(jobID: waiting.job.id))
            queuedRows -= waiting.remaining
            return true
        }
        return actions
    }

    /// The job the next batch is formed around: its kind, and its wait for the batching delay. Requests and
    /// streams' windows share the model by time: when both wait, the oldest request leads unless request-led
    /// batches are ahead in model seconds, in which case the oldest window does. A request therefore waits
    /// behind at most one batch of windows, however many streams run (in arrival order it would wait behind
    /// every window queued before it), and while requests keep coming a stream still gets half the model's time:
    /// neither side can stall the other. Counting time, not turns, matters at ViT-Large size, where one
    /// audio+video window (29 s) costs as much as a dozen audio requests. Only batches formed while both sides
    /// wait count, so neither banks the time the other left idle.
    private func leader() -> Int? {
        guard let oldest = queue.indices.first else { return nil }
        guard let request = queue.firstIndex(where: { !$0.job.admitted }),
              let window = queue.firstIndex(where: { $0.job.admitted }) else { return oldest }
        return requestsAhead > 0 ? window : request
    }

    private mutating func nextBatch(now: ServingInstant) -> Batch? {
        guard let lead = leader() else { return nil }
        let head = queue[lead]
        let kind = head.job.kind
        let rowsOfKind = queue.lazy.filter { $0.job.kind == kind }.reduce(0) { $0 + $1.remaining }
        let waitedLongEnough = now.seconds(since: head.enqueuedAt) >= configuration.maxDelaySeconds
        let limit = batchLimit(for: kind)
        guard rowsOfKind >= limit || waitedLongEnough || mode == .flushing else { return nil }
        let contended = queue.contains { $0.job.admitted } && queue.contains { !$0.job.admitted }

        var slices: [Slice] = []
        var budget = limit
        // The leader first, then the other jobs of its kind, oldest first.
        for index in [lead] + queue.indices.filter({ $0 != lead }) where budget > 0 && queue[index].job.kind == kind {
            let take = min(budget, queue[index].remaining)
            let start = queue[index].nextRow
            slices.append(Slice(jobID: queue[index].job.id, rows: start..<(start + take)))
            queue[index].nextRow += take
            budget -= take
            queuedRows -= take
        }
        queue.removeAll { $0.remaining == 0 }
        let batch = Batch(kind: kind, slices: slices)
        if contended {
            // Before warm-up has timed the kind, each batch counts alike: plain turns.
            let seconds = Double(batch.rowCount) * (rowSeconds[kind] ?? 1)
            requestsAhead += head.job.admitted ? -seconds : seconds
        } else {
            requestsAhead = 0
        }
        return batch
    }

    /// The earliest instant at which something could change without a new event: the oldest job's batching
    /// delay running out (only matters while the worker is free) or an unstarted job's deadline.
    private func nextWake() -> ServingInstant? {
        var wake: ServingInstant?
        if case .idle = worker, let lead = leader() {
            wake = queue[lead].enqueuedAt.adding(seconds: configuration.maxDelaySeconds)
        }
        for waiting in queue where waiting.nextRow == 0 && !waiting.job.admitted {
            wake = min(wake ?? waiting.job.deadline, waiting.job.deadline)
        }
        return wake
    }
}
