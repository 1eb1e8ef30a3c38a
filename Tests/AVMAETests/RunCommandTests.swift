import AVMAE
import Foundation
import XCTest

/// `avmae-serve run`, the way someone checks the Swift numbers from Python: .npy in, safetensors out.
/// Needs the built binary in AVMAE_SERVE_BIN (Tests/run.sh sets it).
final class RunCommandTests: XCTestCase {
    var binary: String!
    var work: URL!

    override func setUpWithError() throws {
        guard let bin = ProcessInfo.processInfo.environment["AVMAE_SERVE_BIN"] else {
            throw XCTSkip("NOT RUN: set AVMAE_SERVE_BIN to the built avmae-serve binary (Tests/run.sh does)")
        }
        binary = bin
        work = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let work { try? FileManager.default.removeItem(at: work) }
    }

    @discardableResult
    func cli(_ args: [String], expectStatus: Int32 = 0) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, expectStatus, text)
        return text
    }

    func testRunReproducesGoldenLogitsFromNpy() throws {
        let params = try Golden.file("params.safetensors"), io = try Golden.file("io.safetensors")
        let config = Golden.config(.finetuned, .mbt, [.audio, .video], width: 32, heads: 2, mlp: 64, layers: 2, fusion: 1, classes: 527)
        let bundle = try Golden.bundle(params: params, prefix: "ft_av/", config: config)
        defer { try? FileManager.default.removeItem(at: bundle) }
        try NumpyArray.write(try io.tensor("inputs/spectrogram"), to: work.appendingPathComponent("spec.npy"))
        // Floats here (upstream's own conversion, done in the test); the golden tests feed the same pixels as bytes.
        let pixels = try io.bytes("inputs/rgb4_uint8").map { Float($0) / 255 * 2 - 1 }
        try NumpyArray.write(Tensor(shape: [2, 4, 224, 224, 3], data: pixels),
                             to: work.appendingPathComponent("frames.npy"))
        let out = work.appendingPathComponent("out.safetensors")
        try cli(["run", "--bundle", bundle.path, "--spectrogram", work.appendingPathComponent("spec.npy").path,
                 "--frames", work.appendingPathComponent("frames.npy").path, "--out", out.path])
        let result = try SafeTensorsFile(path: out.path)
        XCTAssertEqual(Set(result.names), ["audio_tokens", "rgb_tokens", "logits"])
        assertClose(try result.tensor("logits"), try io.tensor("outputs/finetune/as527/av/logits"), "run CLI ft_av logits")
    }

    /// `run --precision int8|bf16` end to end: the same golden logits at the documented low-precision tolerance,
    /// and a precision name that does not exist refused with the valid ones.
    func testRunAtLowPrecision() throws {
        let params = try Golden.file("params.safetensors"), io = try Golden.file("io.safetensors")
        let config = Golden.config(.finetuned, .mbt, [.audio], width: 32, heads: 2, mlp: 64, layers: 2, fusion: 1, classes: 527)
        let bundle = try Golden.bundle(params: params, prefix: "ft_a/", config: config)
        defer { try? FileManager.default.removeItem(at: bundle) }
        let spec = work.appendingPathComponent("spec.npy"), out = work.appendingPathComponent("out.safetensors")
        try NumpyArray.write(try io.tensor("inputs/spectrogram"), to: spec)
        for precision in ComputeEngine.availablePrecisions where precision != .fp32 {
            try cli(["run", "--bundle", bundle.path, "--spectrogram", spec.path, "--out", out.path, "--precision", precision.rawValue])
            assertClose(try SafeTensorsFile(path: out.path).tensor("logits"), try io.tensor("outputs/finetune/as527/a/logits"),
                        tolerance: Golden.tolerance(precision), "run CLI \(precision) ft_a logits")
        }
        let refused = try cli(["run", "--bundle", bundle.path, "--spectrogram", spec.path, "--out", out.path, "--precision", "fp16"],
                              expectStatus: 64)
        XCTAssertTrue(refused.contains("fp16"), refused)
    }

    func testRunWaveformThroughFrontendMatchesTensorFlow() throws {
        let dir = Golden.fixtures.appendingPathComponent("frontend")
        let golden = try Golden.file("frontend-default.safetensors", in: dir)
        var config = DemoBundle.config()
        config.frontend = try JSONDecoder().decode(FrontendConfig.self, from: Data(contentsOf: dir.appendingPathComponent("frontend-default.json")))
        config.modalities = [.audio]
        let bundle = work.appendingPathComponent("bundle")
        try DemoBundle.write(to: bundle, config: config)
        try NumpyArray.write(try golden.tensor("waveform"), to: work.appendingPathComponent("wave.npy"))
        let out = work.appendingPathComponent("out.safetensors")
        try cli(["run", "--bundle", bundle.path, "--waveform", work.appendingPathComponent("wave.npy").path, "--out", out.path])
        let logMel = try SafeTensorsFile(path: out.path).tensor("log_mel"), ref = try golden.tensor("log_mel")
        XCTAssertEqual(logMel.shape, [2, 200, 128])
        let kept = ref.shape[1]
        var worst: Float = 0
        for b in 0..<2 { for f in 0..<kept { for j in 0..<128 {
            worst = max(worst, abs(logMel.data[(b * 200 + f) * 128 + j] - ref.data[(b * kept + f) * 128 + j]))
        } } }
        // Loud bins only differ by float32 rounding; this is a loose end-to-end check, FrontendTests has the tight one.
        XCTAssertLessThan(worst, 1e-2)
    }

    func testDemoBundleInspectsClean() throws {
        let bundle = work.appendingPathComponent("demo")
        try cli(["demo-bundle", "--out", bundle.path])
        let text = try cli(["inspect", "--bundle", bundle.path])
        XCTAssertTrue(text.contains("finetuned, encoder mbt"), text)
        XCTAssertTrue(text.contains("audioset, 527 classes"), text)
        try Data("{}".utf8).write(to: bundle.appendingPathComponent("config.json"))
        let refused = try cli(["inspect", "--bundle", bundle.path], expectStatus: 64)
        XCTAssertTrue(refused.contains("config.json: name is missing"), refused)
    }

    func testRunRefusesBadNpy() throws {
        let bundle = work.appendingPathComponent("demo")
        try DemoBundle.write(to: bundle)
        let bad = work.appendingPathComponent("bad.npy")
        try Data("definitely not numpy".utf8).write(to: bad)
        let text = try cli(["run", "--bundle", bundle.path, "--waveform", bad.path, "--out", work.appendingPathComponent("o").path],
                           expectStatus: 1)
        XCTAssertTrue(text.contains("not a .npy file"), text)
    }
}
