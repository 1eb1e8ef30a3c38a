import ArgumentParser
import Serving

/// `avmae-serve classify PATH...`: /v1/classify over a dataset, offline. Options are /v1/classify's query
/// parameters under the same names.
struct BulkClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify files or folders with a bundle; one JSON line per file in OUTPUT/results.jsonl.",
        discussion: """
            Same decoder, batching and model as serve, without HTTP. A rerun into the same --output skips the \
            files already done; a file that fails gets an error line (the code and message the HTTP API would give) \
            and the run goes on. Ctrl-C finishes the clips in flight and stops; run again to resume.
            """)

    @OptionGroup var bulk: BulkOptions

    @Option(help: "Labels per clip.") var topK: Int = 5
    @Option(help: "Leave out labels scoring below this (0...1).") var threshold: Float?
    @Option(help: "auto, audio, video or audiovisual.") var modality: ModalityChoice = .auto
    @Flag(help: "Also record each window's labels (the timeline).") var windows = false
    @Option(help: "Temporal crops per window: 1 or 4.") var crops: Int = 1
    @Option(help: "How window scores become the clip's: mean or max.") var aggregate: Aggregation = .mean

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard threshold.map({ (0...1).contains($0) }) ?? true else { throw ValidationError("--threshold is in 0...1") }
        guard CropCount(rawValue: crops) != nil else { throw ValidationError("--crops is 1 or 4") }
    }

    func run() throws {
        var options = ClassifyOptions()
        options.topK = topK
        options.threshold = threshold
        options.modality = modality
        options.timeline = windows
        options.crops = CropCount(rawValue: crops)!
        options.aggregation = aggregate
        try BulkRun(command: "classify", options: bulk, job: { _ in .classify(options) }).execute()
    }
}

extension ModalityChoice: ExpressibleByArgument {}
extension Aggregation: ExpressibleByArgument {}
