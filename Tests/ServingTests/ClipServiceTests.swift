import AVMAE
import Logging
import Metrics
import XCTest
import Serving

/// The serving core end to end with a fake model and decoder: decode pool, batcher, worker, assembly.
/// Waits on expectations for results, never on sleeps.
final class ClipServiceTests: XCTestCase {
    private func service(backend: FakeBackend, decoder: FakeDecoder = FakeDecoder(), maxBatch: Int = 8,
                         delay: Double = 0.001) -> ClipService {
        let lifecycle = Lifecycle(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        lifecycle.move(to: .warming)
        lifecycle.move(to: .ready)
        var configuration = ClipService.Configuration()
        configuration.maxBatch = maxBatch
        configuration.maxDelaySeconds = delay
        return ClipService(backend: backend, decoder: decoder, configuration: configuration, lifecycle: lifecycle,
                           logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: ServingMetrics(factory: NOOPMetricsHandler.instance, model: "fake"))
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
