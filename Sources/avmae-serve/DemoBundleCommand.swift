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

    @Option(name: .long, help: "Encoder layers per modality.")
    var layers: Int = 2

    @Option(name: .long, help: "Hidden width.")
    var width: Int = 64

    func run() throws {
        let config = DemoBundle.config(layers: layers, width: width, heads: max(1, width / 16), mlp: 2 * width)
        try DemoBundle.write(to: URL(fileURLWithPath: out), config: config, seed: seed)
        print("demo bundle written to \(out) (labels are placeholders: predictions are meaningless)")
    }
}
