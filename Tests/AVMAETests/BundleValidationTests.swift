import AVMAE
import Foundation
import XCTest

/// A broken bundle is refused with an error that names what is wrong, never a crash.
final class BundleValidationTests: XCTestCase {
    var params: SafeTensorsFile!
    let config = Golden.config(.finetuned, .mbt, [.audio], width: 32, heads: 2, mlp: 64, layers: 2, classes: 527)
    var dir: URL!

    override func setUpWithError() throws {
        params = try Golden.file("params.safetensors")
        dir = try Golden.bundle(params: params, prefix: "ft_a/", config: config)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func assertLoadFails(_ expected: BundleError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Model(bundle: dir), file: file, line: line) { error in
            XCTAssertEqual(error as? BundleError, expected, file: file, line: line)
            print("refused: \(error)")
        }
    }

    func rewriteWeights(_ edit: (inout [(String, Tensor)]) -> Void) throws {
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        var tensors = try file.names.map { ($0, try file.tensor($0)) }
        edit(&tensors)
        try SafeTensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
    }

    func testValidBundleLoads() throws {
        let model = try Model(bundle: dir)
        XCTAssertEqual(model.labels.count, 527)
        XCTAssertEqual(model.config.modalities, [.audio])
        XCTAssertGreaterThan(model.parameterCount, 10_000)
    }

    func testMissingTensorIsNamed() throws {
        let name = "Transformer/encoderblock_1/MlpBlock_0/Dense_1/bias"
        try rewriteWeights { $0.removeAll { $0.0 == name } }
        assertLoadFails(.missingTensor(name))
    }

    func testWrongShapeIsNamed() throws {
        let name = "Transformer/encoder_norm/scale"
        try rewriteWeights { t in t = t.map { $0.0 == name ? ($0.0, Tensor(zeros: [31])) : $0 } }
        assertLoadFails(.wrongShape(tensor: name, expected: [32], found: [31]))
    }

    func testUnusedTensorsAreRefused() throws {
        try rewriteWeights { $0.append(("Decoder/encoder_norm/scale", Tensor(zeros: [32]))) }
        assertLoadFails(.unusedTensors(["Decoder/encoder_norm/scale"]))
    }

    func testConfigThatDisagreesWithWeights() throws {
        var c = config
        c.numLayers = 3
        try JSONEncoder().encode(c).write(to: dir.appendingPathComponent("config.json"))
        assertLoadFails(.missingTensor("Transformer/encoderblock_2/LayerNorm_0/scale"))
    }

    func testTruncatedWeightsFile() throws {
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 100).write(to: url)
        XCTAssertThrowsError(try Model(bundle: dir)) { error in
            guard case .invalidSafetensors(_, let why)? = error as? BundleError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("truncated"), why)
        }
    }

    func testGarbageHeader() throws {
        try Data([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0] + [UInt8](repeating: 0x41, count: 64))
            .write(to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Model(bundle: dir)) { error in
            guard case .invalidSafetensors? = error as? BundleError else { return XCTFail("\(error)") }
        }
        try Data([16, 0, 0, 0, 0, 0, 0, 0] + Array("not json at all!".utf8)).write(to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Model(bundle: dir)) { error in
            XCTAssertEqual(error as? BundleError, .invalidSafetensors(file: "model.safetensors", "header is not a JSON object"))
        }
    }

    func testLabelCountMustMatchHead() throws {
        let labels = (0..<526).map { Label(index: $0, mid: "m\($0)", name: "n\($0)") }
        try LabelsFile.format(labels).write(to: dir.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        assertLoadFails(.invalidLabels("has 526 classes but the classifier head has 527"))
    }

    func testMissingConfigFieldIsNamed() throws {
        try Data(#"{"name": "x", "kind": "finetuned", "encoder": "mbt", "modalities": ["audio"]}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        assertLoadFails(.invalidConfig(field: "hidden_size", "is missing"))
    }

    func testLabelsCSVWithQuotedNames() throws {
        let text = "index,mid,display_name\n0,/m/09x0r,\"Speech\"\n1,/m/05zppz,\"Male speech, man speaking\"\n"
        let labels = try LabelsFile.parse(text)
        XCTAssertEqual(labels, [Label(index: 0, mid: "/m/09x0r", name: "Speech"),
                                Label(index: 1, mid: "/m/05zppz", name: "Male speech, man speaking")])
        XCTAssertEqual(try LabelsFile.parse(LabelsFile.format(labels)), labels)
    }

    func testBadInputsAreRefusedNotCrashed() throws {
        let model = try Model(bundle: dir)
        let ws = model.makeWorkspace()
        XCTAssertThrowsError(try model.run(ModelInput(), workspace: ws)) { XCTAssertEqual($0 as? ModelError, .noInput) }
        XCTAssertThrowsError(try model.run(ModelInput(frames: .floats(Tensor(zeros: [1, 2, 224, 224, 3]))), workspace: ws)) {
            XCTAssertEqual($0 as? ModelError, .unsupportedModality(.video, model: [.audio]))
        }
        XCTAssertThrowsError(try model.run(ModelInput(spectrogram: Tensor(zeros: [1, 100, 64])), workspace: ws)) {
            guard case .badShape? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try model.run(ModelInput(waveform: Tensor(zeros: [1, 100])), workspace: ws)) {
            guard case .tooShort? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
    }
}
