import ArgumentParser
import AVMAE
import Foundation
import Media
import Serving

/// Runs a bundle on raw tensors, or on a clip decoded exactly as the server decodes it, so anyone can check the
/// Swift numbers (and what the model is shown) against a Python reference.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a bundle on raw .npy tensors or on a media clip and write every output as safetensors.",
        discussion: """
        Outputs: log_mel (when --waveform is given), audio_tokens, rgb_tokens, logits (finetuned models).
        --waveform: (B, samples) float32 at the bundle's sample rate, through the log-mel frontend.
        --spectrogram: (B, T, mel) or (B, T, mel, 1), fed to the tokenizer as upstream's model input.
        --frames: (B, T, 224, 224, 3) float32 in [-1, 1], or uint8 (converted as float32(u8) / 255 * 2 - 1).
        --clip: a media file, decoded and batched by the server's own code (W windows, R rows per window: the
          crops, or 1 without video). Also writes waveform (W, samples), frames uint8 (W, crops, T, 224, 224, 3),
          frame_times float64 (W, crops, T), window_starts float64 (W), window_scores (W, C) and scores (C), the
          clip-level probabilities /v1/classify answers with (mean over crops and windows); log_mel is
          (W, frames, mel), logits (W, R, C), tokens (W, R, N, D).
        """
    )

    @Option(name: .long, help: "Bundle folder (config.json, model.safetensors, labels.csv).")
    var bundle: String

    @Option(name: .long, help: "Waveform .npy, (B, samples).")
    var waveform: String?

    @Option(name: .long, help: "Spectrogram .npy, (B, T, mel[, 1]).")
    var spectrogram: String?

    @Option(name: .long, help: "Video frames .npy, (B, T, 224, 224, 3).")
    var frames: String?

    @Option(name: .long, help: "A media file to decode as the server does (instead of .npy inputs).")
    var clip: String?

    @Option(name: .long, help: "Temporal crops per window for --clip: 1 or 4.")
    var crops: Int = 1

    @Option(name: .long, help: "Output .safetensors path.")
    var out: String

    @Option(name: .long, help: "OpenBLAS threads.")
    var blasThreads: Int = 2

    @Option(name: .long, help: "Encoder precision: fp32 (default), int8 or bf16.")
    var precision: Precision = .fp32

    func validate() throws {
        guard waveform == nil || spectrogram == nil else { throw ValidationError("give --waveform or --spectrogram, not both") }
        guard clip == nil || (waveform == nil && spectrogram == nil && frames == nil) else {
            throw ValidationError("give --clip or .npy inputs, not both")
        }
        guard waveform != nil || spectrogram != nil || frames != nil || clip != nil else {
            throw ValidationError("give --clip or at least one of --waveform, --spectrogram, --frames")
        }
        guard CropCount(rawValue: crops) != nil else { throw ValidationError("--crops is 1 or 4") }
    }

    func run() throws {
        let kernel = try KernelCheck.run()
        BLAS.threads = blasThreads
        KernelCheck.report(kernel, precision: precision)
        let model = try Model(bundle: URL(fileURLWithPath: bundle), precision: precision)
        if let clip {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: clip)))
            let tensors = try ClipRun(model: model, crops: CropCount(rawValue: crops)!).run(bytes)
            try SafeTensorsFile.write(values: tensors, metadata: ["model": model.config.name, "clip": clip],
                                      to: URL(fileURLWithPath: out))
            for (name, shape, _) in tensors { print("\(name) \(shape)") }
            return
        }
        var input = ModelInput()
        if let waveform { input.waveform = try floatArray(waveform) }
        if let spectrogram {
            var s = try floatArray(spectrogram)
            if s.shape.count == 4 { s.shape.removeLast() }
            input.spectrogram = s
        }
        if let frames {
            switch try NumpyArray.read(URL(fileURLWithPath: frames)) {
            case .float(let t): input.frames = .floats(t)
            case .uint8(let shape, let bytes): input.frames = .bytes(shape: shape, bytes)
            }
        }
        let output = try model.run(input, workspace: model.makeWorkspace())
        let tensors = [("log_mel", output.logMel), ("audio_tokens", output.audioTokens),
                       ("rgb_tokens", output.videoTokens), ("logits", output.logits)].compactMap { name, t in t.map { (name, $0) } }
        try SafeTensorsFile.write(tensors, metadata: ["model": model.config.name], to: URL(fileURLWithPath: out))
        for (name, t) in tensors { print("\(name) \(t.shape)") }
    }

    private func floatArray(_ path: String) throws -> Tensor {
        switch try NumpyArray.read(URL(fileURLWithPath: path)) {
        case .float(let t): return t
        case .uint8: throw ValidationError("\(path): expected float32 or float64, got uint8")
        }
    }
}

extension Precision: ExpressibleByArgument {}
