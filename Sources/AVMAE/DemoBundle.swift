import Foundation

/// A small bundle of the real architecture with seeded random weights, so the server starts and answers on a
/// machine with nothing downloaded. Its labels are placeholders and its predictions mean nothing.
public enum DemoBundle {
    /// Audio+video MBT classifier, AudioSet-shaped (527 classes, 10 s, 32 frames), 2 layers of width 64.
    public static func config(layers: Int = 2, width: Int = 64, heads: Int = 4, mlp: Int = 128) -> ModelConfig {
        var c = ModelConfig(name: "avmae-demo", kind: .finetuned, encoder: .mbt, modalities: [.audio, .video],
                            hiddenSize: width, numHeads: heads, mlpDim: mlp, numLayers: layers)
        c.fusionLayer = layers / 2
        c.numClasses = 527
        c.labelSet = .audioset
        c.clipSeconds = 10
        c.frames = 32
        c.stride = 2
        c.resizeShort = 256
        c.frontend.mean = 1.102
        c.frontend.std = 2.762
        return c
    }

    /// The released AudioSet audio+video finetuned model's shapes (ViT-Large: 24 layers, 1024 wide, 16 heads, MLP
    /// 4096, fusion from layer 18, spec Part B), one encoder per modality, about 2.4 GB of random weights: for
    /// measuring what the server does at full size (operations tests, admission, batching), never for answers.
    public static func largeConfig() -> ModelConfig {
        var c = config(layers: 24, width: 1024, heads: 16, mlp: 4096)
        c.name = "avmae-demo-large"
        c.fusionLayer = 18
        return c
    }

    /// Writes config.json, model.safetensors and labels.csv into `dir` (created if needed). Kernels are uniform
    /// with variance 1/fan_in so activations keep their scale through the layers; LayerNorm scales are 1.
    public static func write(to dir: URL, config: ModelConfig = config(), seed: UInt64 = 0) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tensors = try Model.tensorShapes(for: config)
        let fanIn = Dictionary(tensors.map { ($0.name, $0.fanIn) }, uniquingKeysWith: { a, _ in a })
        var rng = SplitMix64(seed: seed)
        try SafeTensorsFile.write(shapes: tensors.map { ($0.name, $0.shape) },
                                  metadata: ["generator": "avmae-serve DemoBundle", "seed": "\(seed)"],
                                  to: dir.appendingPathComponent("model.safetensors")) { name in
            let count = tensors.first { $0.name == name }!.shape.reduce(1, *)
            if name.hasSuffix("/scale") { return [Float](repeating: 1, count: count) }
            let bound = name.hasSuffix("/bias") ? 0.02 : Float(3.0 / Double(max(fanIn[name]!, 1))).squareRoot()
            return (0..<count).map { _ in rng.uniform(-bound, bound) }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(config).write(to: dir.appendingPathComponent("config.json"))
        let labels = (0..<config.numClasses).map {
            Label(index: $0, mid: "/demo/\($0)", name: String(format: "demo class %03d (meaningless)", $0))
        }
        try LabelsFile.format(labels).write(to: dir.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
    }
}

/// Deterministic, seedable generator (Vigna's SplitMix64): same seed, same demo weights on every machine.
public struct SplitMix64 {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
}
