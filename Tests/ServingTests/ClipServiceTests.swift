import AVMAE
import Logging
import Metrics
import XCTest
import Serving

/// The serving core end to end with a fake model and decoder: decode pool, batcher, worker, assembly.
/// Waits on expectations for results, never on sleeps.
final class ClipServiceTests: XCTestCase {
    private func service(backend: FakeBackend, decoder: ClipDecoding = FakeDecoder(), maxBatch: Int = 8,
                         delay: Double = 0.001, decodeThreads: Int = 2,
                         inferenceQueue: InferenceThread = InferenceThread()) -> ClipService {
        let lifecycle = Lifecycle(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        lifecycle.move(to: .warming)
        lifecycle.move(to: .ready)
        var configuration = ClipService.Configuration()
        configuration.maxBatch = maxBatch
        configuration.maxDelaySeconds = delay
        configuration.decodeConcurrency = decodeThreads
        return ClipService(backend: backend, decoder: decoder, configuration: configuration, lifecycle: lifecycle,
                           inferenceQueue: inferenceQueue, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: ServingMetrics(factory: NOOPMetricsHandler.instance, model: "fake"))
    }

    private func submit(_ service: ClipService, _ bytes: [UInt8], _ task: ClipTask) -> Result<ClipResult, ServingError> {
        let done = expectation(description: "answer")
        let box = Box()
        service.submit(ClipRequest(id: "r", bytes: bytes, task: task)) { result in
            box.result = result
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        return box.result!
    }

    private final class Box: @unchecked Sendable { var result: Result<ClipResult, ServingError>? }

    func testLongClipIsClassifiedPerWindowAndAggregated() throws {
        var options = ClassifyOptions()
        options.topK = 2
        options.timeline = true
        let result = submit(service(backend: FakeBackend(classes: 3), maxBatch: 2), [1, 3, 2], .classify(options))
        guard case .success(.classify(let classified)) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(classified.windowsUsed, 3)
        XCTAssertEqual(classified.modalities, [.audio])
        // Class 2 has logit 3 * sample per window: mean of sigmoid(3), sigmoid(9), sigmoid(6).
        let sigmoid = { (x: Float) in 1 / (1 + exp(-x)) }
        XCTAssertEqual(classified.labels.map(\.index), [2, 1])
        XCTAssertEqual(classified.labels[0].score, (sigmoid(3) + sigmoid(9) + sigmoid(6)) / 3, accuracy: 1e-6)
        XCTAssertEqual(classified.timeline?.map(\.startSeconds), [0, 1, 2])
        XCTAssertEqual(classified.timeline?[1].labels[0].score ?? 0, sigmoid(9), accuracy: 1e-6)
    }

    func testAudiovisualRowsCarryBothInputsAndFourCropsAreAveraged() throws {
        var options = ClassifyOptions()
        options.crops = .four
        options.topK = 1
        let result = submit(service(backend: FakeBackend(classes: 2), decoder: FakeDecoder(hasVideo: true)), [1],
                            .classify(options))
        guard case .success(.classify(let classified)) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(classified.modalities, [.audio, .video])
        // Every crop is (1 + 0.5) * (c + 1); class 1 wins with sigmoid(3).
        XCTAssertEqual(classified.labels[0].score, 1 / (1 + exp(-3)), accuracy: 1e-6)
    }

    func testEmbeddingPoolsTheTokens() throws {
        var options = EmbedOptions()
        options.tokens = true
        let result = submit(service(backend: FakeBackend(classes: 2)), [4], .embed(options))
        guard case .success(.embed(let embedded)) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(embedded.pooled[.audio], [4, -4])
        XCTAssertEqual(embedded.windows[0].tokens?[.audio]?.rows, 1)
    }

    func testErrorsComeBackTyped() {
        let broken = submit(service(backend: FakeBackend(classes: 2)), [0xFF], .classify(ClassifyOptions()))
        XCTAssertEqual(broken.failure, .undecodableClip("fake: 0xFF marks a broken clip"))

        var videoOnly = ClassifyOptions()
        videoOnly.modality = .video
        let noVideo = submit(service(backend: FakeBackend(classes: 2)), [1], .classify(videoOnly))
        XCTAssertEqual(noVideo.failure, .modalityUnavailable(requested: .video, clip: [.audio], model: [.audio, .video]))

        var failing = FakeBackend(classes: 2)
        failing.failing = true
        guard case .failure(.inferenceFailed) = submit(service(backend: failing), [1], .classify(ClassifyOptions())) else {
            return XCTFail("a throwing model is an inference failure")
        }
    }

    func testConcurrentRequestsShareBatches() {
        let sizes = BatchSizes()
        var backend = FakeBackend(classes: 2)
        backend.onBatch = { sizes.append($0) }
        let service = self.service(backend: backend, maxBatch: 4, delay: 0.2)
        let done = expectation(description: "all answered")
        done.expectedFulfillmentCount = 8
        for i in 0..<8 {
            service.submit(ClipRequest(id: "\(i)", bytes: [UInt8(i + 1)], task: .classify(ClassifyOptions()))) { result in
                if case .success = result { done.fulfill() }
            }
        }
        wait(for: [done], timeout: 10)
        XCTAssertEqual(sizes.values.reduce(0, +), 8)
        XCTAssertLessThan(sizes.values.count, 8, "batches: \(sizes.values)")
        XCTAssertTrue(sizes.values.allSatisfy { $0 <= 4 })
        XCTAssertTrue(service.drain(timeout: 5))
    }

    func testAnAbandonedRequestIsAnsweredOnceAndItsRowsNeverRun() {
        let sizes = BatchSizes()
        var backend = FakeBackend(classes: 2)
        backend.onBatch = { sizes.append($0) }
        let service = self.service(backend: backend, maxBatch: 4, delay: 0.2)
        let answers = Answers()
        let gone = expectation(description: "the abandoned request is answered")
        let pending = service.submit(ClipRequest(id: "gone", bytes: [1], task: .classify(ClassifyOptions()))) { result in
            answers.append(result.failure)
            gone.fulfill()
        }
        pending.abandon()
        pending.abandon()
        wait(for: [gone], timeout: 10)
        // A request after it, of the same kind within the batching delay, would have shared its batch.
        let result = submit(service, [2], .classify(ClassifyOptions()))
        guard case .success = result else { return XCTFail("\(result)") }
        XCTAssertEqual(answers.values, [.clientGone], "answered exactly once")
        XCTAssertEqual(sizes.values, [1], "only the second request's row ran")
        XCTAssertTrue(service.drain(timeout: 5))
    }

    func testARequestAbandonedDuringItsDecodeNeverReachesTheModel() {
        let sizes = BatchSizes()
        var backend = FakeBackend(classes: 2)
        backend.onBatch = { sizes.append($0) }
        let decoder = GatedDecoder()
        // One decode thread: the next request's decode starts only after this one's has finished and its rows
        // were (or were not) queued.
        let service = self.service(backend: backend, decoder: decoder, maxBatch: 1, delay: 0, decodeThreads: 1)
        let answered = expectation(description: "answered")
        let answers = Answers()
        let pending = service.submit(ClipRequest(id: "gone", bytes: [1], task: .classify(ClassifyOptions()))) {
            answers.append($0.failure)
            answered.fulfill()
        }
        decoder.started.wait()
        pending.abandon()
        wait(for: [answered], timeout: 10)
        decoder.finish.signal()  // the decode completes after its client left
        decoder.finish.signal()  // and the next request's
        let result = submit(service, [2], .classify(ClassifyOptions()))
        guard case .success = result else { return XCTFail("\(result)") }
        XCTAssertEqual(answers.values, [.clientGone])
        XCTAssertEqual(sizes.values, [1], "only the second request's row ran")
        XCTAssertTrue(service.drain(timeout: 5))
    }

    /// A decoder that says when a decode starts and waits for a signal before it returns.
    private final class GatedDecoder: ClipDecoding, @unchecked Sendable {
        let started = DispatchSemaphore(value: 0)
        let finish = DispatchSemaphore(value: 0)

        func decode(_ bytes: [UInt8], want: Set<Modality>, crops: CropCount) throws -> DecodedWindows {
            started.signal()
            finish.wait()
            return try FakeDecoder().decode(bytes, want: want, crops: crops)
        }
    }

    /// Two models on one inference thread: a request to the idle one that is due before the busy one's running
    /// batch can end is refused at once (503 with the estimate), not queued to expire. It is admitted when its
    /// deadline leaves room.
    func testAdmissionCountsTheOtherModelsWorkOnTheSameThread() throws {
        let thread = InferenceThread()
        let longBatchStarted = DispatchSemaphore(value: 0)
        var slow = FakeBackend(classes: 2)
        slow.onBatch = { rows in
            if rows > 1 { longBatchStarted.signal() }
            Thread.sleep(forTimeInterval: 0.2 * Double(rows))
        }
        let busy = service(backend: slow, inferenceQueue: thread)
        let idle = service(backend: slow, inferenceQueue: thread)
        try busy.warmUp()
        try idle.warmUp()
        let busyDone = expectation(description: "the busy model's long request")
        busy.submit(ClipRequest(id: "long", bytes: Array(repeating: 1, count: 10), task: .classify(ClassifyOptions()))) { result in
            if case .failure(let error) = result { XCTFail("the busy model's request failed: \(error)") }
            busyDone.fulfill()
        }
        // Its ten 0.2 s rows run in batches of five (1 s each, max_batch_seconds): wait until the first has started.
        XCTAssertEqual(longBatchStarted.wait(timeout: .now() + 5), .success)

        let refused = expectation(description: "refused at once")
        let asked = Date()
        idle.submit(ClipRequest(id: "short", bytes: [1], task: .classify(ClassifyOptions()), timeoutSeconds: 0.3)) { result in
            guard case .failure(.queueFull(let retryAfter)) = result else { return XCTFail("expected queueFull, got \(result)") }
            XCTAssertGreaterThanOrEqual(retryAfter, 1)
            XCTAssertLessThan(Date().timeIntervalSince(asked), 0.25, "refused at once, not expired at its deadline")
            refused.fulfill()
        }
        wait(for: [refused], timeout: 5)
        XCTAssertEqual(submit(idle, [1], .classify(ClassifyOptions())).map { _ in true }, .success(true))
        wait(for: [busyDone], timeout: 10)
    }

    func testARequestsOwnTimeoutIsAnsweredAtItsDeadline() {
        let service = self.service(backend: FakeBackend(classes: 2), maxBatch: 4, delay: 30)
        let started = Date()
        let answers = Answers()
        let expired = expectation(description: "deadline")
        service.submit(ClipRequest(id: "t", bytes: [1], task: .classify(ClassifyOptions()), timeoutSeconds: 0.05)) {
            answers.append($0.failure)
            expired.fulfill()
        }
        wait(for: [expired], timeout: 10)
        XCTAssertEqual(answers.values, [.deadlineExceeded(retryAfterSeconds: 1)])
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "answered at its deadline, not the batch's 30 s")
        XCTAssertTrue(service.drain(timeout: 5))
    }

    private final class Answers: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [ServingError?] = []
        func append(_ error: ServingError?) { lock.withLock { stored.append(error) } }
        var values: [ServingError?] { lock.withLock { stored } }
    }

    private final class BatchSizes: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [Int] = []
        func append(_ size: Int) { lock.withLock { stored.append(size) } }
        var values: [Int] { lock.withLock { stored } }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
