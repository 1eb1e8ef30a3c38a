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
        XCTAssertEqual(m.submit(job(2), now: at(1)), [.reject(jobID: 2)])
        _ = m.tick(now: at(10))
        XCTAssertEqual(m.queuedRows, 0)
        _ = m.batchCompleted(now: at(11))
        XCTAssertEqual(m.submit(job(3, rows: 3), now: at(11)), [.wake(at: at(21))])
        XCTAssertEqual(m.submit(job(4), now: at(12)), [.reject(jobID: 4)])
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
}
