import AVMAE
import Media
import Serving

/// `run --clip`: a clip through the serving path's own pieces (the decoder `serve` builds, the rows the batcher
/// takes, the batched model input, the score assembly), so what it writes is exactly what the server shows the model.
struct ClipRun {
    let model: Model
    let crops: CropCount

    func run(_ bytes: [UInt8]) throws -> [(String, [Int], SafeTensorValues)] {
        let config = model.config
        let decoder = MediaClipDecoder(config: config, limits: MediaLimits(), hopSeconds: nil)
        let used = Set(config.modalities)
        let decoded = try decoder.decode(bytes, want: used, crops: crops)
        let available = used.intersection(decoded.available)
        guard !decoded.windows.isEmpty, !available.isEmpty else {
            throw ServingError.undecodableClip(decoded.unusableReason ?? "the clip has none of the model's modalities")
        }
        let rows = ClipService.rows(decoded.windows, using: available, crops: crops, keepTokens: true)
        let kind = ClipService.kind(for: available)
        let output = try model.run(ModelBackend.input(rows, kind: kind, config: config), workspace: model.makeWorkspace())

        let windows = decoded.windows.count, perWindow = rows.count / windows
        var tensors: [(String, [Int], SafeTensorValues)] = [
            ("window_starts", [windows], .f64(decoded.windows.map(\.startSeconds))),
        ]
        if available.contains(.audio) {
            tensors.append(("waveform", [windows, config.windowSamples], .f32(decoded.windows.flatMap { $0.waveform ?? [] })))
        }
        if available.contains(.video) {
            let side = ModelBackend.cropSize
            tensors.append(("frames", [windows, crops.rawValue, config.frames, side, side, 3],
                            .u8(decoded.windows.flatMap { $0.videoCrops.prefix(crops.rawValue).flatMap { $0 } })))
            tensors.append(("frame_times", [windows, crops.rawValue, config.frames],
                            .f64(decoded.windows.flatMap { $0.frameTimes.prefix(crops.rawValue).flatMap { $0 } })))
        }
        if let logMel = output.logMel {
            // One spectrogram per window: a window's crops share its sound.  // (W, frames, mel)
            let step = logMel.count / rows.count
            let first = (0..<windows).flatMap { logMel.data[($0 * perWindow * step)..<(($0 * perWindow + 1) * step)] }
            tensors.append(("log_mel", [windows] + logMel.shape.dropFirst(), .f32(first)))
        }
        for (name, tensor) in [("audio_tokens", output.audioTokens), ("rgb_tokens", output.videoTokens)] {
            guard let tensor else { continue }
            tensors.append((name, [windows, perWindow] + tensor.shape.dropFirst(), .f32(tensor.data)))  // (W, R, N, D)
        }
        if let logits = output.logits {
            let classes = logits.shape[1]
            tensors.append(("logits", [windows, perWindow, classes], .f32(logits.data)))
            let backend = ModelBackend(model: model)
            let outputs = (0..<rows.count).map {
                RowOutput(logits: Array(logits.data[($0 * classes)..<(($0 + 1) * classes)]), tokens: [:])
            }
            let windowScores = ResultAssembly.windowScores(outputs, cropsPerWindow: perWindow, backend: backend)
            tensors.append(("window_scores", [windows, classes], .f32(windowScores.flatMap { $0 })))
            tensors.append(("scores", [classes], .f32(ResultAssembly.aggregate(windowScores, by: .mean))))
        }
        return tensors
    }
}
