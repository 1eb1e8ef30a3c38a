import AVMAE
import Foundation
import Logging
import Metrics
import XCTest
import Serving

/// Raw tensors past the decoder: rows checked against the model, run through the same batcher, one output row
/// each; and a clip asked for its raw outputs (/v2's CLIP) gives the mean over its windows.
final class TensorRequestTests: XCTestCase {
    private func service(_ backend: FakeBackend) -> ClipService {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let lifecycle = Lifecycle(logger: logger)
        lifecycle.move(to: .warming)
        lifecycle.move(to: .ready)
        var configuration = ClipService.Configuration()
        configuration.maxDelaySeconds = 0.001
        return ClipService(backend: backend, decoder: FakeDecoder(), configuration: configuration, lifecycle: lifecycle,
                           logger: logger, metrics: ServingMetrics(factory: NOOPMetricsHandler.instance, model: "fake"))
    }

    private final class Box<T>: @unchecked Sendable { var value: T? }

    private func submit(_ service: ClipService, _ request: TensorRequest) -> Result<RawOutputs, ServingError> {
        let done = expectation(description: "answer")
        let box = Box<Result<RawOutputs, ServingError>>()
        service.submit(request) { result in
            box.value = result
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        return box.value!
    }

    func testEachRowComesBackWithItsLogitsProbabilitiesAndEmbedding() throws {
        // Fake logits: (first sample + first frame byte / 2) * (class + 1).
        let request = TensorRequest(id: "t", batch: 2, waveform: [1, 0, 0, 0, 2, 0, 0, 0], frames: [4, 0, 6, 0],
                                    embeddings: true)
        let outputs = try submit(service(FakeBackend(classes: 2)), request).get()
        XCTAssertEqual(outputs.rows, 2)
        XCTAssertEqual(outputs.modalities, [.audio, .video])
        XCTAssertEqual(outputs.logits, [3, 6, 5, 10])
        let probabilities = try XCTUnwrap(outputs.probabilities)
        for (p, logit) in zip(probabilities, [Float(3), 6, 5, 10]) { XCTAssertEqual(p, 1 / (1 + exp(-logit)), accuracy: 1e-6) }
        // Fake tokens: one per row, (base, -base); the embedding is their mean.
        XCTAssertEqual(outputs.embeddings[.audio], [3, -3, 5, -5])
    }

    func testRowsThatDoNotFitTheModelAreRefused() {
        let audioOnly = service(FakeBackend(classes: 2, modalities: [.audio]))
        let cases: [(TensorRequest, String)] = [
            (TensorRequest(id: "t", batch: 2, waveform: [1, 0, 0, 0], embeddings: false), "2 rows need 8"),
            (TensorRequest(id: "t", batch: 1, frames: [1, 0], embeddings: false), "no video branch"),
            (TensorRequest(id: "t", batch: 1, waveform: [1, 0, 0, 0], spectrogram: [0], embeddings: false), "not both"),
            (TensorRequest(id: "t", batch: 1, embeddings: false), "no audio or video"),
            (TensorRequest(id: "t", batch: 0, waveform: [], embeddings: false), "empty"),
        ]
        for (request, mentions) in cases {
            guard case .failure(.invalidInput(let why)) = submit(audioOnly, request) else { return XCTFail(mentions) }
            XCTAssertTrue(why.contains(mentions), "'\(why)' does not mention '\(mentions)'")
        }
    }

    func testClipOutputsAreTheMeanOverWindows() throws {
        var options = OutputOptions()
        options.embeddings = true
        let done = expectation(description: "answer")
        let box = Box<Result<ClipResult, ServingError>>()
        // Three windows whose first samples are 1, 3, 2: logits (1, 3, 2) * (c + 1), mean 2 * (c + 1).
        service(FakeBackend(classes: 2)).submit(ClipRequest(id: "c", bytes: [1, 3, 2], task: .outputs(options))) {
            box.value = $0
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        guard case .success(.outputs(let outputs))? = box.value else { return XCTFail("\(String(describing: box.value))") }
        XCTAssertEqual(outputs.rows, 1)
        XCTAssertEqual(outputs.logits, [2, 4])
        let sigmoid = { (x: Float) in 1 / (1 + exp(-x)) }
        XCTAssertEqual(outputs.probabilities?[0] ?? 0, (sigmoid(1) + sigmoid(3) + sigmoid(2)) / 3, accuracy: 1e-6)
        XCTAssertEqual(outputs.embeddings[.audio], [2, -2])
    }

    /// A batch that mixes waveform and spectrogram rows runs as two model calls and keeps its row order.
    func testMixedAudioFormsInOneBatchGiveEachRowItsOwnAnswer() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tensor-rows-\(UUID().uuidString)")
        try DemoBundle.write(to: dir, seed: 7)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Model(bundle: dir)
        let backend = ModelBackend(model: model)
        let session = backend.makeSession()
        var rng = SplitMix64(seed: 3)
        let waveform = (0..<backend.info.windowSamples).map { _ in rng.uniform(-0.5, 0.5) }
        let logMel = try XCTUnwrap(model.run(ModelInput(waveform: Tensor(shape: [1, waveform.count], data: waveform)),
                                             workspace: model.makeWorkspace()).logMel).data
        let silence = [Float](repeating: 0, count: waveform.count)
        let mixed = try session.run([
            BatchRow(waveform: silence, frames: nil, keepTokens: false),
            BatchRow(waveform: nil, spectrogram: logMel, frames: nil, keepTokens: false),
            BatchRow(waveform: waveform, frames: nil, keepTokens: false),
        ], kind: .audio)
        let alone = try session.run([BatchRow(waveform: waveform, frames: nil, keepTokens: false)], kind: .audio)
        let quiet = try session.run([BatchRow(waveform: silence, frames: nil, keepTokens: false)], kind: .audio)
        for (row, expected) in [(0, quiet[0]), (1, alone[0]), (2, alone[0])] {
            let got = try XCTUnwrap(mixed[row].logits), want = try XCTUnwrap(expected.logits)
            let worst = zip(got, want).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-4, "row \(row)")
        }
    }
}
