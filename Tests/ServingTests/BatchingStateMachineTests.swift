import XCTest
import Serving

/// The batching rules, driven with made-up instants: no clocks, no queues, no sleeps.
final class BatchingStateMachineTests: XCTestCase {
    typealias Machine = BatchingStateMachine
    private let t0 = ServingInstant(nanoseconds: 1_000_000_000)

    private func at(_ ms: Double) -> ServingInstant { t0.adding(seconds: ms / 1000) }

    private func machine(maxBatch: Int = 4, delayMs: Double = 10, maxQueued: Int = 8) -> Machine {
        Machine(configuration: .init(maxBatch: maxBatch, maxDelaySeconds: delayMs / 1000, maxQueuedRows: maxQueued))
    }

    private func job(_ id: UInt64, _ kind: InputKind = .audio, rows: Int = 1, deadlineMs: Double = 1000) -> Machine.Job {
        .init(id: id, kind: kind, rows: rows, deadline: at(deadlineMs))
    }

    private func slice(_ id: UInt64, _ rows: Range<Int>) -> Machine.Slice { .init(jobID: id, rows: rows) }

    func testSingleJobWaitsForTheDelayThenRunsAlone() {
        var m = machine()
        XCTAssertEqual(m.submit(job(1), now: at(0)), [.wake(at: at(10))])
        XCTAssertEqual(m.tick(now: at(10)), [.run(.init(kind: .audio, slices: [slice(1, 0..<1)]))])
        XCTAssertFalse(m.isIdle)
        XCTAssertEqual(m.batchCompleted(now: at(30)), [])
        XCTAssertTrue(m.isIdle)
    }

    /// A stream's window is queued even when the queue is full and never expires; a short request that arrives
    /// after it shares its batch, while an ordinary job is still refused by the full queue.
    func testAdmittedStreamWindowsQueueAlwaysAndNeverExpire() {
        var m = machine(maxBatch: 4, maxQueued: 2)
        let window = Machine.Job(id: 3, kind: .audio, rows: 1, deadline: at(5), admitted: true)
        XCTAssertEqual(m.submit(job(1, .video, rows: 2), now: at(0)), [.wake(at: at(10))])
        XCTAssertEqual(m.submit(job(2), now: at(1)), [.reject(jobID: 2, retryAfterSeconds: nil)])
        XCTAssertEqual(m.submit(window, now: at(1)), [.wake(at: at(10))], "queued past max_queue, no deadline wake-up")
        XCTAssertEqual(m.tick(now: at(10)), [.run(.init(kind: .video, slices: [slice(1, 0..<2)]))])
        XCTAssertEqual(m.submit(job(4), now: at(11)), [.wake(at: at(1000))])
        // Long past the window's own deadline, it runs, together with the short job queued behind it.
        XCTAssertEqual(m.batchCompleted(now: at(500), seconds: 0.01),
                       [.run(.init(kind: .audio, slices: [slice(3, 0..<1), slice(4, 0..<1)]))])
    }

    /// Requests and streams' windows share the model: a request queued behind two streams' windows runs after the
    /// window in progress, not after every window queued before it; at equal costs they alternate.
    func testRequestsAndStreamWindowsTakeTurns() {
        var m = machine(maxBatch: 1, delayMs: 0)
        func window(_ id: UInt64) -> Machine.Job { .init(id: id, kind: .audio, rows: 1, deadline: at(0), admitted: true) }
        func runs(_ actions: [Machine.Action]) -> [UInt64] {
            actions.flatMap { action -> [UInt64] in
                if case .run(let batch) = action { return batch.slices.map(\.jobID) }
                return []
            }
        }
        XCTAssertEqual(runs(m.submit(window(1), now: at(0))), [1])  // stream a, window 1
        XCTAssertEqual(runs(m.submit(window(2), now: at(1))), [])   // stream b, window 1
        XCTAssertEqual(runs(m.submit(window(3), now: at(1))), [])   // stream a, window 2
        XCTAssertEqual(runs(m.submit(job(10), now: at(2))), [])
        XCTAssertEqual(runs(m.batchCompleted(now: at(10))), [10], "the request goes ahead of the queued windows")
        XCTAssertEqual(runs(m.batchCompleted(now: at(20))), [2], "then a window")
        XCTAssertEqual(runs(m.submit(job(11), now: at(21))), [])
        XCTAssertEqual(runs(m.batchCompleted(now: at(30))), [11])
        XCTAssertEqual(runs(m.batchCompleted(now: at(40))), [3])
        XCTAssertEqual(runs(m.batchCompleted(now: at(50))), [])
        XCTAssertTrue(m.isIdle)
    }

    /// At ViT-Large costs (an audio+video window 29 s, an audio request 2.5 s) requests and windows share the
    /// model by time, not by turns: after one window, waiting requests lead until they have had as long, instead
    /// of one request per 29 s window; then the stream gets its next window. The stream keeps one window queued
    /// behind the running one, as `streamWindowsInFlight` does.
    func testRequestsAndWindowsShareTheModelByTime() {
        var m = machine(maxBatch: 1, delayMs: 0, maxQueued: 100)
        m.observe(kind: .audio, rows: 1, seconds: 2.5)
        m.observe(kind: .audiovisual, rows: 1, seconds: 29)
        var clock = 0.0
        var nextWindow: UInt64 = 100
        func submitWindow() {
            _ = m.submit(.init(id: nextWindow, kind: .audiovisual, rows: 1, deadline: at(0), admitted: true), now: at(clock))
            nextWindow += 1
        }
        var running: UInt64 = 0
        func complete() -> UInt64 {
            let wasWindow = running >= 100
            clock += (wasWindow ? 29 : 2.5) * 1000
            let runs = m.batchCompleted(now: at(clock), seconds: wasWindow ? 29 : 2.5).compactMap { action -> UInt64? in
                if case .run(let batch) = action { return batch.slices.first?.jobID }
                return nil
            }
            if wasWindow { submitWindow() }  // the stream's slot is free: it queues its next window
            running = runs.first ?? 0
            return running
        }
        submitWindow()  // window 100 runs alone: nothing else waits, nothing is counted
        running = 100
        for id in 1...20 { _ = m.submit(job(UInt64(id), deadlineMs: 1e9), now: at(1)) }
        submitWindow()  // window 101 waits behind it
        let order = (0..<15).map { _ in complete() }
        XCTAssertEqual(order, [1, 101, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 102, 13],
                       "a request, a 29 s window, then requests for as long (2.5 - 29 + 11 x 2.5 = +1 s), then a window")
    }

    func testFullBatchRunsAtOnceWithoutWaiting() {
        var m = machine(maxBatch: 3)
        _ = m.submit(job(1), now: at(0))
        _ = m.submit(job(2), now: at(1))
        XCTAssertEqual(m.submit(job(3), now: at(2)),
                       [.run(.init(kind: .audio, slices: [slice(1, 0..<1), slice(2, 0..<1), slice(3, 0..<1)]))])
        XCTAssertEqual(m.queuedRows, 0)
    }

    func testOnlySameKindIsGroupedAndTheOldestKindGoesFirst() {
        var m = machine(maxBatch: 4)
        _ = m.submit(job(1, .video), now: at(0))
        _ = m.submit(job(2, .audio), now: at(1))
        _ = m.submit(job(3, .video), now: at(2))
        XCTAssertEqual(m.tick(now: at(10)), [
            .run(.init(kind: .video, slices: [slice(1, 0..<1), slice(3, 0..<1)])),
            .wake(at: at(1000)),  // audio job 2 keeps its deadline timer while the worker is busy
        ])
        XCTAssertEqual(m.batchCompleted(now: at(12)), [.run(.init(kind: .audio, slices: [slice(2, 0..<1)]))])
    }

    func testBatchesFormWhileTheWorkerIsBusy() {
        var m = machine(maxBatch: 2, delayMs: 0)
        XCTAssertEqual(m.submit(job(1), now: at(0)), [.run(.init(kind: .audio, slices: [slice(1, 0..<1)]))])
        _ = m.submit(job(2), now: at(1))
        _ = m.submit(job(3), now: at(2))
        _ = m.submit(job(4), now: at(3))
        XCTAssertEqual(m.batchCompleted(now: at(50)).first,
                       .run(.init(kind: .audio, slices: [slice(2, 0..<1), slice(3, 0..<1)])))
        XCTAssertEqual(m.batchCompleted(now: at(90)).first, .run(.init(kind: .audio, slices: [slice(4, 0..<1)])))
    }

    func testALongClipIsSplitAcrossBatches() {
        var m = machine(maxBatch: 4, maxQueued: 16)
        XCTAssertEqual(m.submit(job(1, rows: 6), now: at(0)), [.run(.init(kind: .audio, slices: [slice(1, 0..<4)]))])
        _ = m.submit(job(2, rows: 1), now: at(1))
        XCTAssertEqual(m.batchCompleted(now: at(40)),
                       [.run(.init(kind: .audio, slices: [slice(1, 4..<6), slice(2, 0..<1)]))])
    }

    func testQueueOverflowIsRejectedButAnOversizedJobIntoAnEmptyQueueIsNot() {
        var m = machine(maxBatch: 8, maxQueued: 3)
        XCTAssertEqual(m.submit(job(1, rows: 5), now: at(0)), [.wake(at: at(10))])
        XCTAssertEqual(m.submit(job(2), now: at(1)), [.reject(jobID: 2, retryAfterSeconds: nil)])
        _ = m.tick(now: at(10))
        XCTAssertEqual(m.queuedRows, 0)
        _ = m.batchCompleted(now: at(11), seconds: 0.005)  // 1 ms per row
        XCTAssertEqual(m.submit(job(3, rows: 3), now: at(11)), [.wake(at: at(21))])
        guard case .reject(4, let wait?) = m.submit(job(4), now: at(12)).first else { return XCTFail("job 4 not refused") }
        XCTAssertEqual(wait, 0.003, accuracy: 1e-9)
    }

    func testAJobPastItsDeadlineIsDroppedBeforeItStarts() {
        var m = machine(maxBatch: 1, delayMs: 0)
        XCTAssertEqual(m.submit(job(1), now: at(0)).first, .run(.init(kind: .audio, slices: [slice(1, 0..<1)])))
        XCTAssertEqual(m.submit(job(2, deadlineMs: 20), now: at(1)), [.wake(at: at(20))])
        XCTAssertEqual(m.tick(now: at(20)), [.expire(jobID: 2)])
        XCTAssertEqual(m.queuedRows, 0)
        XCTAssertEqual(m.batchCompleted(now: at(25)), [])
        XCTAssertTrue(m.isIdle)
    }

    func testAStartedJobIsNotDroppedAtItsDeadline() {
        var m = machine(maxBatch: 2, delayMs: 0, maxQueued: 8)
        _ = m.submit(job(1, rows: 3, deadlineMs: 5), now: at(0))
        XCTAssertEqual(m.batchCompleted(now: at(50)), [.run(.init(kind: .audio, slices: [slice(1, 2..<3)]))])
    }

    func testAWithdrawnJobLeavesTheQueueAndItsUnstartedRowsNeverRun() {
        var m = machine(maxBatch: 2, delayMs: 0, maxQueued: 16)
        _ = m.submit(job(1, rows: 3), now: at(0))  // rows 0..<2 start at once
        _ = m.submit(job(2, rows: 2), now: at(1))
        _ = m.submit(job(3, rows: 1), now: at(2))
        XCTAssertEqual(m.queuedRows, 4)
        XCTAssertEqual(m.withdraw(jobID: 2, now: at(3)), [.wake(at: at(1000))])
        XCTAssertEqual(m.withdraw(jobID: 1, now: at(4)), [.wake(at: at(1000))], "a partly started job drops the rest of its rows")
        XCTAssertEqual(m.queuedRows, 1)
        XCTAssertEqual(m.batchCompleted(now: at(10)), [.run(.init(kind: .audio, slices: [slice(3, 0..<1)]))])
        XCTAssertEqual(m.withdraw(jobID: 3, now: at(11)), [], "a running job finishes its batch")
        XCTAssertEqual(m.batchCompleted(now: at(20)), [])
        XCTAssertTrue(m.isIdle)
    }

    func testFlushRunsQueuedWorkWithoutWaitingForFullerBatches() {
        var m = machine(maxBatch: 4, delayMs: 100)
        _ = m.submit(job(1), now: at(0))
        XCTAssertEqual(m.flush(now: at(1)).first, .run(.init(kind: .audio, slices: [slice(1, 0..<1)])))
        // A request admitted before shutdown that finishes decoding now still runs, and without delay.
        XCTAssertEqual(m.submit(job(2), now: at(2)), [.wake(at: at(1000))])
        XCTAssertEqual(m.batchCompleted(now: at(3)), [.run(.init(kind: .audio, slices: [slice(2, 0..<1)]))])
        XCTAssertFalse(m.isIdle)
        XCTAssertEqual(m.batchCompleted(now: at(4)), [])
        XCTAssertTrue(m.isIdle)
    }

    func testBatchingOffMeansEveryRequestRunsAlone() {
        var m = machine(maxBatch: 1, delayMs: 0)
        XCTAssertEqual(m.submit(job(1), now: at(0)), [.run(.init(kind: .audio, slices: [slice(1, 0..<1)]))])
        XCTAssertEqual(m.submit(job(2), now: at(0)), [.wake(at: at(1000))])
        XCTAssertEqual(m.batchCompleted(now: at(5)), [.run(.init(kind: .audio, slices: [slice(2, 0..<1)]))])
    }

    // Admission by cost.

    func testCostPerRowIsLearnedFromWarmUpAndCompletedBatches() {
        var m = machine(maxBatch: 2, delayMs: 0)
        XCTAssertNil(m.rowSeconds[.audio])
        m.observe(kind: .audio, rows: 2, seconds: 4)
        XCTAssertEqual(m.rowSeconds[.audio], 2)
        _ = m.submit(job(1, rows: 2, deadlineMs: 100_000), now: at(0))
        _ = m.batchCompleted(now: at(5000), seconds: 2)  // 1 s per row: recent runs weigh 0.3
        XCTAssertEqual(m.rowSeconds[.audio] ?? 0, 0.7 * 2 + 0.3 * 1, accuracy: 1e-12)
        _ = m.submit(job(2, .video, rows: 1, deadlineMs: 100_000), now: at(5000))
        _ = m.batchCompleted(now: at(8000))  // no worker measure: the time since the batch started
        XCTAssertEqual(m.rowSeconds[.video] ?? 0, 3, accuracy: 1e-9)
    }

    func testAJobWhoseDeadlineFallsBeforeTheQueuedWorkIsRefusedAtOnceWithTheEstimate() {
        var m = machine(maxBatch: 1, delayMs: 0, maxQueued: 100)
        m.observe(kind: .audio, rows: 1, seconds: 2)
        XCTAssertEqual(m.submit(job(1, deadlineMs: 30_000), now: at(0)).first, .run(.init(kind: .audio, slices: [slice(1, 0..<1)])))
        _ = m.submit(job(2, deadlineMs: 30_000), now: at(0))
        XCTAssertEqual(m.estimatedWaitSeconds(now: at(0)), 4, accuracy: 1e-9)
        // 2 s left of the running row + 2 s queued = 4 s > 3 s: refused now, not expired in 3 s.
        XCTAssertEqual(m.submit(job(3, deadlineMs: 3000), now: at(0)), [.reject(jobID: 3, retryAfterSeconds: 4)])
        XCTAssertEqual(m.submit(job(4, deadlineMs: 10_000), now: at(0)), [.wake(at: at(10_000))])
        XCTAssertEqual(m.estimatedWaitSeconds(now: at(1000)), 5, accuracy: 1e-9)
        XCTAssertEqual(m.queuedRows, 2)
    }

    func testSlowRowsBatchOnlyAsFarAsTheBatchTimeAllowsAndStartWithoutWaiting() {
        var m = Machine(configuration: .init(maxBatch: 8, maxDelaySeconds: 0.010, maxQueuedRows: 64, maxBatchSeconds: 1))
        m.observe(kind: .audio, rows: 1, seconds: 0.3)   // 3 rows fit in 1 s
        m.observe(kind: .video, rows: 1, seconds: 17)    // not even one fits: one row per batch all the same
        m.observe(kind: .audiovisual, rows: 4, seconds: 0.04)  // small rows: max_batch governs
        XCTAssertEqual(m.batchLimit(for: .audio), 3)
        XCTAssertEqual(m.batchLimit(for: .video), 1)
        XCTAssertEqual(m.batchLimit(for: .audiovisual), 8)
        // A one-row video job is a full batch at once: no batching delay for rows that would not batch anyway.
        XCTAssertEqual(m.submit(job(1, .video, deadlineMs: 100_000), now: at(0)),
                       [.run(.init(kind: .video, slices: [slice(1, 0..<1)]))])
        _ = m.submit(job(2, rows: 5, deadlineMs: 100_000), now: at(1))
        XCTAssertEqual(m.batchCompleted(now: at(17_000), seconds: 17).first,
                       .run(.init(kind: .audio, slices: [slice(2, 0..<3)])))
        XCTAssertEqual(m.batchCompleted(now: at(18_000), seconds: 0.9).first,
                       .run(.init(kind: .audio, slices: [slice(2, 3..<5)])))
        // Unknown cost (nothing observed yet): max_batch.
        XCTAssertEqual(machine(maxBatch: 4).batchLimit(for: .audio), 4)
    }

    /// Another model on the same inference thread delays this one's jobs by about as long as this one's own queue
    /// (models take turns a batch at a time), plus its running batch, and never by more than it has queued.
    func testAdmissionCountsTheWorkOfOtherModelsOnTheThread() {
        let busy = Machine.Load(queuedSeconds: 10, longestBatchSeconds: 2)
        XCTAssertEqual(Machine.wait(own: 0, beside: [busy]), 2, accuracy: 1e-12)
        XCTAssertEqual(Machine.wait(own: 3, beside: [busy]), 3 + 5, accuracy: 1e-12)
        XCTAssertEqual(Machine.wait(own: 20, beside: [busy]), 20 + 10, accuracy: 1e-12)
        XCTAssertEqual(Machine.wait(own: 3, beside: [busy, .init(queuedSeconds: 1, longestBatchSeconds: 1)]), 3 + 5 + 1,
                       accuracy: 1e-12)

        var m = machine(maxBatch: 1, delayMs: 0, maxQueued: 100)
        m.observe(kind: .audio, rows: 1, seconds: 1)
        XCTAssertEqual(m.load(now: at(0)), .init(queuedSeconds: 0, longestBatchSeconds: 1))
        // Alone, an empty queue admits anything; beside a busy model, a job due before that model's batch ends
        // is refused with the combined estimate.
        XCTAssertEqual(m.submit(job(1, deadlineMs: 1500), now: at(0), beside: [busy]), [.reject(jobID: 1, retryAfterSeconds: 2)])
        XCTAssertEqual(m.submit(job(2, deadlineMs: 2500), now: at(0), beside: [busy]).first,
                       .run(.init(kind: .audio, slices: [slice(2, 0..<1)])))
        XCTAssertEqual(m.load(now: at(0)), .init(queuedSeconds: 1, longestBatchSeconds: 1))
        // 1 s of its own ahead: 1 + min(10, 1 + 2) = 4 s.
        XCTAssertEqual(m.submit(job(3, deadlineMs: 3900), now: at(0), beside: [busy]), [.reject(jobID: 3, retryAfterSeconds: 4)])
    }

    func testWithoutKnownCostsAdmissionIsByRowsOnly() {
        var m = machine(maxBatch: 1, delayMs: 0)
        _ = m.submit(job(1), now: at(0))
        XCTAssertEqual(m.estimatedWaitSeconds(now: at(0)), 0)
        XCTAssertEqual(m.submit(job(2, deadlineMs: 1), now: at(0)), [.wake(at: at(1))])
    }
}
