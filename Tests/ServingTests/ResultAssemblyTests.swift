import AVMAE
import XCTest
import Serving

/// Crop averaging, scores, window aggregation and top-k, on hand-made numbers.
final class ResultAssemblyTests: XCTestCase {
    private let labels = (0..<3).map { Label(index: $0, mid: "/m/\($0)", name: "class \($0)") }

    func testCropsAreAveragedInLogitSpaceBeforeScoring() {
        let backend = FakeBackend(classes: 3)
        // Window 0 has crops with logits [0,2,4] and [2,0,-4]: the mean is [1,1,0] -> sigmoid.
        let outputs = [RowOutput(logits: [0, 2, 4], tokens: [:]), RowOutput(logits: [2, 0, -4], tokens: [:])]
        let scores = ResultAssembly.windowScores(outputs, cropsPerWindow: 2, backend: backend)
        XCTAssertEqual(scores.count, 1)
        XCTAssertEqual(scores[0][0], 1 / (1 + exp(-1)), accuracy: 1e-6)
        XCTAssertEqual(scores[0][2], 0.5, accuracy: 1e-6)
    }

    func testMeanAndMaxOverWindows() {
        let windows: [[Float]] = [[0.1, 0.9, 0.5], [0.3, 0.1, 0.5]]
        XCTAssertEqual(ResultAssembly.aggregate(windows, by: .mean), [0.2, 0.5, 0.5])
        XCTAssertEqual(ResultAssembly.aggregate(windows, by: .max), [0.3, 0.9, 0.5])
    }

    func testTopKIsBestFirstWithStableTiesAndRespectsTheThreshold() {
        let top = ResultAssembly.top([0.5, 0.9, 0.5], k: 2, threshold: nil, labels: labels)
        XCTAssertEqual(top.map(\.index), [1, 0])
        XCTAssertEqual(top[0].mid, "/m/1")
        XCTAssertEqual(ResultAssembly.top([0.5, 0.9, 0.2], k: 3, threshold: 0.5, labels: labels).map(\.index), [1, 0])
    }

    func testEmbeddingsPoolTokensThenAverageWindows() {
        let tokens = { (a: Float) in [Modality.audio: TokenMatrix(rows: 2, cols: 2, data: [a, 0, a + 2, 4])] }
        let outputs = [RowOutput(logits: nil, tokens: tokens(0)), RowOutput(logits: nil, tokens: tokens(2))]
        let windows = [DecodedWindow(index: 0, startSeconds: 0, waveform: nil, videoCrops: []),
                       DecodedWindow(index: 1, startSeconds: 10, waveform: nil, videoCrops: [])]
        let (pooled, perWindow) = ResultAssembly.embeddings(outputs, windows: windows, modalities: [.audio],
                                                            keepTokens: false)
        XCTAssertEqual(perWindow[0].pooled[.audio], [1, 2])
        XCTAssertEqual(perWindow[1].pooled[.audio], [3, 2])
        XCTAssertEqual(pooled[.audio], [2, 2])
        XCTAssertNil(perWindow[0].tokens)
    }
}
