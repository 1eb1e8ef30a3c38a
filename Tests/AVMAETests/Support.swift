import AVMAE
import Foundation
import XCTest

/// The compact golden set (shared/golden/compact, copied into Fixtures/): upstream Scenic outputs with random
/// weights, 2 layers, width 32, 2 heads, MLP 64, fusion at layer 1, batch 2.
enum Golden {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func file(_ name: String, in dir: URL = fixtures) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: dir.appendingPathComponent(name).path)
    }

    /// A bundle folder made from golden parameters: tensors under `prefix` (and a second head under
    /// `headPrefix`) written with the prefix stripped, as the converter writes them.
    static func bundle(params: SafeTensorsFile, prefix: String, headPrefix: String? = nil, config: ModelConfig) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let head = "ProjectionHeadAndClassifier_0/"
        var tensors = [(String, Tensor)]()
        for name in params.names where name.hasPrefix(prefix) {
            let short = String(name.dropFirst(prefix.count))
            if headPrefix != nil && short.hasPrefix(head) { continue }
            tensors.append((short, try params.tensor(name)))
        }
        if let headPrefix {
            for name in params.names where name.hasPrefix(headPrefix) {
                tensors.append((String(name.dropFirst(headPrefix.count)), try params.tensor(name)))
            }
        }
        try SafeTensorsFile.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        try JSONEncoder().encode(config).write(to: dir.appendingPathComponent("config.json"))
        let labels = (0..<config.numClasses).map { Label(index: $0, mid: "/m/test\($0)", name: "class \($0)") }
        try LabelsFile.format(labels).write(to: dir.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        return dir
    }

    static func config(_ kind: ModelKind, _ encoder: EncoderKind, _ modalities: [Modality], width: Int, heads: Int,
                       mlp: Int, layers: Int, joint: Int = 0, fusion: Int = 1, classes: Int = 0) -> ModelConfig {
        var c = ModelConfig(name: "golden", kind: kind, encoder: encoder, modalities: modalities, hiddenSize: width,
                            numHeads: heads, mlpDim: mlp, numLayers: layers)
        c.jointLayers = joint
        c.fusionLayer = fusion
        c.numClasses = classes
        c.labelSet = classes == 309 ? .vggsound : classes > 0 ? .audioset : .none
        return c
    }

    /// max|ours - ref| / max|ref| allowed per precision (models/README.md, accuracy): fp32 reproduces upstream.
    static func tolerance(_ precision: Precision) -> Float {
        switch precision {
        case .fp32: 1e-4
        case .bf16: 1e-2
        case .int8: 3e-2
        }
    }
}

/// max |ours - ref| / max |ref|: the parity measure the issue fixes at <= 1e-4.
func relativeError(_ ours: Tensor, _ ref: Tensor) -> Float {
    precondition(ours.shape == ref.shape, "shape \(ours.shape) vs reference \(ref.shape)")
    let scale = ref.data.map(abs).max() ?? 0
    let diff = zip(ours.data, ref.data).map { abs($0 - $1) }.max() ?? 0
    return scale == 0 ? diff : diff / scale
}

func assertClose(_ ours: Tensor?, _ ref: Tensor, tolerance: Float = 1e-4, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard let ours else { return XCTFail("\(what): no output", file: file, line: line) }
    guard ours.shape == ref.shape else {
        return XCTFail("\(what): shape \(ours.shape), reference \(ref.shape)", file: file, line: line)
    }
    let err = relativeError(ours, ref)
    print("parity \(what): max|ours-ref|/max|ref| = \(err)")
    XCTAssertLessThanOrEqual(err, tolerance, what, file: file, line: line)
}
