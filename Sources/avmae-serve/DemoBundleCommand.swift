import ArgumentParser
import AVMAE
import Foundation

struct DemoBundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-bundle",
        abstract: "Write the built-in demo bundle: real AV-MAE architecture, small, seeded random weights.",
        discussion: "Its 527 labels are placeholders and its predictions are meaningless; convert a released checkpoint (models/README.md) for real results."
    )

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    enum Size: String, ExpressibleByArgument, CaseIterable {
        case small, large
    }

    @Option(name: .long, help: "small: 2 layers of width 64 (starts anywhere); large: the released audio+video model's shapes, two ViT-Large encoders, ~2.4 GB.")
    var size: Size = .small

    @Option(name: .long, help: "Encoder layers per modality (small size only).")
    var layers: Int = 2

    @Option(name: .long, help: "Hidden width (small size only).")
    var width: Int = 64

    func run() throws {
        let config = size == .large
            ? DemoBundle.largeConfig()
            : DemoBundle.config(layers: layers, width: width, heads: max(1, width / 16), mlp: 2 * width)
        try DemoBundle.write(to: URL(fileURLWithPath: out), config: config, seed: seed)
        print("demo bundle written to \(out) (labels are placeholders: predictions are meaningless)")
    }
}
