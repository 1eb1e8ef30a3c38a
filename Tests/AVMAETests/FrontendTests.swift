import AVMAE
import Foundation
import XCTest

/// The log-mel frontend against TensorFlow's tf.signal (shared/golden/frontend-*, trimmed to 2 s by
/// tools/fixtures/trim_frontend_golden.py). Tolerances are spec Part A.1's: TF computes in float32, so the
/// comparison is per frame in the linear domain plus a mean over the log values, not bit for bit.
final class FrontendTests: XCTestCase {
    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Golden.fixtures.appendingPathComponent("frontend")
        let config = try JSONDecoder().decode(FrontendConfig.self,
                                              from: Data(contentsOf: dir.appendingPathComponent("frontend-\(name).json")))
        let golden = try Golden.file("frontend-\(name).safetensors", in: dir)
        let frontend = LogMelFrontend(config)

        let melRef = try golden.tensor("mel_matrix")
        XCTAssertEqual(frontend.melMatrix.shape, melRef.shape)
        let melErr = zip(frontend.melMatrix.data, melRef.data).map { abs($0 - $1) }.max()!
        print("frontend \(name): mel matrix max abs error \(melErr)")
        XCTAssertLessThanOrEqual(melErr, 5e-5, file: file, line: line)

        let waves = try golden.tensor("waveform"), ref = try golden.tensor("log_mel")
        let (batch, samples) = (waves.shape[0], waves.shape[1])
        let (refFrames, mel) = (ref.shape[1], ref.shape[2])
        var worstFrame: Float = 0, absSum: Double = 0
        for b in 0..<batch {
            let ours = frontend.logMel(Array(waves.data[(b * samples)..<((b + 1) * samples)]))
            XCTAssertEqual(ours.shape, [frontend.frameCount(samples: samples), mel])
            XCTAssertGreaterThanOrEqual(ours.shape[0], refFrames)
            for f in 0..<refFrames {
                let o = ours.data[(f * mel)..<((f + 1) * mel)], r = ref.data[((b * refFrames + f) * mel)..<((b * refFrames + f + 1) * mel)]
                let peak = r.map { expf($0) }.max()!
                let diff = zip(o, r).map { abs(expf($0) - expf($1)) }.max()!
                worstFrame = max(worstFrame, diff / peak)
                absSum += zip(o, r).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
            }
        }
        let meanAbs = absSum / Double(batch * refFrames * mel)
        print("frontend \(name): worst per-frame linear error \(worstFrame), mean |log error| \(meanAbs)")
        XCTAssertLessThanOrEqual(worstFrame, 1e-4, file: file, line: line)
        XCTAssertLessThanOrEqual(meanAbs, 1e-4, file: file, line: line)
    }

    func testDefaultParametersMatchTensorFlow() throws { try check("default") }

    func testAlternativeParametersMatchTensorFlow() throws { try check("alt") }

    func testFrameCounts() {
        var c = FrontendConfig()
        XCTAssertEqual(LogMelFrontend(c).frameCount(samples: 160_000), 1000)
        XCTAssertEqual(LogMelFrontend(c).frameCount(samples: 128_000), 800)
        c.padEnd = false
        XCTAssertEqual(LogMelFrontend(c).frameCount(samples: 128_000), 798)
        XCTAssertEqual(LogMelFrontend(c).frameCount(samples: 399), 0)
    }
}
