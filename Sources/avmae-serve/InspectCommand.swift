import ArgumentParser
import AVMAE
import Foundation

/// Loads a bundle (which validates every tensor against config.json) and describes it.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Check a model bundle's integrity and print its kind, modalities, size, frontend and labels."
    )

    @Option(help: "Bundle folder.")
    var bundle: String

    func run() throws {
        let model: Model
        do {
            model = try Model(bundle: URL(fileURLWithPath: bundle))
        } catch {
            throw ValidationError("\(bundle): \(error)")
        }
        let c = model.config, f = c.frontend
        print("""
        bundle      \(bundle)   OK (every tensor present, shapes match config.json, nothing unused)
        name        \(c.name)
        kind        \(c.kind.rawValue), encoder \(c.encoder.rawValue)
        modalities  \(c.modalities.map(\.rawValue).joined(separator: " + "))
        size        \(c.numLayers) layers\(c.jointLayers > 0 ? " + \(c.jointLayers) joint" : ""), width \(c.hiddenSize), \
        \(c.numHeads) heads, MLP \(c.mlpDim)\(c.encoder == .mbt && c.modalities.count == 2 ? ", fusion from layer \(c.fusionLayer) with \(c.bottlenecks) bottlenecks" : "")
        parameters  \(model.parameterCount) (\(String(format: "%.1f", Double(model.parameterCount) * 4 / 1_048_576)) MiB float32)
        clip        \(c.clipSeconds) s -> \(c.audioTokens) audio tokens; \(c.frames) frames at stride \(c.stride) (\(c.fps) fps), \
        short side \(c.resizeShort) -> \(c.videoTokens) video tokens
        frontend    \(f.sampleRate) Hz, \(f.window.rawValue) \(f.frameLength)/\(f.frameStep), fft \(f.fftLength), \
        \(f.spectrum.rawValue), \(f.melBins) mel \(f.lowerHz)-\(f.upperHz) Hz, log offset \(f.logOffset), \
        mean \(f.mean) std \(f.std), pad_end \(f.padEnd)
        labels      \(c.labelSet.rawValue), \(model.labels.count) classes\(model.labels.first.map { ", first: \($0.name)" } ?? "")
        """)
    }
}
