import DequeModule
import Foundation
import Logging
import Media
import Metrics

/// A few warm decode workers, each handling one clip at a time and many clips in its life. A worker that fails
/// is replaced at once, so the failure costs its own request and nothing else.
///
/// Owner: the executable, for the life of the process (it outlives model reloads: the policy travels with each
/// clip). Drain path: `shutdown()`; workers also exit by themselves when the daemon's end of their channel closes.
public final class DecodeWorkerPool: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The binary to run as `decode-worker`: this one, so an upgrade in place never pairs an old daemon with
        /// a new worker.
        public var executable = "/proc/self/exe"
        public var workers = 2
        public var memoryBytes = 1 << 30
        public var cpuSecondsPerClip = 60

        public init() {}
    }

    private let configuration: Configuration
    private let logger: Logger
    private let failures: [WorkerFailure.Reason: Counter]
    private let condition = NSCondition()
    private var idle: [WorkerProcess] = []  // guarded by condition
    private var live = 0                    // workers idle or in use; guarded by condition
    /// Callers waiting for a worker, served first come first served: every model's decodes share these workers,
    /// and a condition variable's wake-ups would let a flood for one model overtake another's clip.
    private var waiting = Deque<UInt64>()    // guarded by condition
    private var nextTicket: UInt64 = 0       // guarded by condition

    /// Starts every worker now, so the first requests find them warm.
    public init(configuration: Configuration, logger: Logger, metricsFactory: MetricsFactory) throws {
        precondition(configuration.workers >= 1, "a decode worker pool needs at least one worker")
        self.configuration = configuration
        self.logger = logger
        failures = Dictionary(uniqueKeysWithValues: WorkerFailure.Reason.allCases.map {
            ($0, Counter(label: "avmae_decode_worker_failures_total", dimensions: [("reason", $0.rawValue)],
                         factory: metricsFactory))
        })
        idle = try (0..<configuration.workers).map { _ in try spawn() }
        live = idle.count
        logger.info("decode workers started", metadata: [
            "workers": "\(live)", "pids": "\(idle.map { "\($0.process.pid)" }.joined(separator: ","))",
            "memory_bytes": "\(configuration.memoryBytes)", "cpu_seconds_per_clip": "\(configuration.cpuSecondsPerClip)",
        ])
    }

    /// Decodes one clip on the next free worker (waiting for one if all are busy). A worker failure is thrown
    /// as `WorkerFailure` after the worker has been replaced.
    func decode(_ bytes: [UInt8], policy: ClipPolicy, limits: MediaLimits) throws -> WorkerProcess.Outcome {
        let worker = try checkOut()
        do {
            let outcome = try worker.decode(bytes, policy: policy, limits: limits)
            checkIn(worker)
            return outcome
        } catch let failure as WorkerFailure {
            failures[failure.reason]?.increment()
            logger.warning("decode worker failed; replacing it", metadata: [
                "reason": "\(failure.reason.rawValue)", "pid": "\(worker.process.pid)",
                "clip": "\(ClipFingerprint(bytes))", "detail": "\(failure.termination)",
            ])
            replace()
            throw failure
        }
    }

    /// Kills every idle worker and waits for it. Call after the last decode.
    public func shutdown() {
        let workers = condition.withLock {
            defer { idle = []; live = 0 }
            return idle
        }
        _ = workers  // each one's deinit kills and reaps it
    }

    private func checkOut() throws -> WorkerProcess {
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        waiting.append(ticket)
        defer {
            condition.withLock { waiting.removeAll { $0 == ticket } }
            condition.broadcast()
        }
        while true {
            guard waiting.first == ticket else {
                condition.wait()
                continue
            }
            if let worker = idle.popLast() {
                condition.unlock()
                if worker.isAlive { return worker }
                logger.warning("idle decode worker died; replacing it", metadata: ["pid": "\(worker.process.pid)",
                                                                                     "exit": "\(worker.process.wait())"])
                condition.lock()
                live -= 1
                continue
            }
            if live < configuration.workers {
                live += 1
                condition.unlock()
                do { return try spawn() } catch {
                    condition.withLock { live -= 1 }
                    throw error
                }
            }
            condition.wait()
        }
    }

    private func checkIn(_ worker: WorkerProcess) {
        condition.withLock { idle.append(worker) }
        condition.broadcast()
    }

    /// The failed worker is gone; start its successor now rather than on the next request.
    private func replace() {
        do {
            let worker = try spawn()
            checkIn(worker)
        } catch {
            condition.withLock { live -= 1 }
            condition.broadcast()
            logger.error("could not start a replacement decode worker; the next request tries again",
                         metadata: ["error": "\(error)"])
        }
    }

    private func spawn() throws -> WorkerProcess {
        try WorkerProcess(executable: configuration.executable, limits: .init(
            memoryBytes: configuration.memoryBytes, cpuSecondsPerClip: configuration.cpuSecondsPerClip))
    }
}
