import ArgumentParser
import Serving

/// `avmae-serve embed PATH...`: /v1/embed over a dataset, offline, the vectors in .npy files. Options are
/// /v1/embed's query parameters under the same names.
struct BulkEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed files or folders with a bundle; .npy files plus one JSON line per file in OUTPUT/results.jsonl.",
        discussion: """
            Same decoder, batching and model as serve, without HTTP. Per file and modality: \
            OUTPUT/embeddings/<relative path>.<modality>.npy, the pooled embedding (D) /v1/embed answers; with \
            --windows also .<modality>.windows.npy (W, D); with --tokens also .<modality>.tokens.npy (W, N, D). \
            A rerun into the same --output skips the files already done; a file that fails gets an error line \
            (the code and message the HTTP API would give) and the run goes on. Ctrl-C finishes the clips in \
            flight and stops; run again to resume.
            """)

    @OptionGroup var bulk: BulkOptions

    @Option(help: "auto, audio, video or audiovisual.") var modality: ModalityChoice = .auto
    @Flag(help: "Also write each window's pooled embedding.") var windows = false
    @Flag(help: "Also write every encoder token of every window (implies --windows, as in /v1/embed).") var tokens = false

    func run() throws {
        var options = EmbedOptions()
        options.modality = modality
        options.tokens = tokens
        try BulkRun(command: "embed", options: bulk, job: { output in
            .embed(options, files: BulkEmbeddingFiles(output: output, windows: windows || tokens, tokens: tokens))
        }).execute()
    }
}
