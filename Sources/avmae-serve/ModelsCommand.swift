import AVMAE
import ArgumentParser
import Foundation

/// `avmae-serve models list | fetch`: the released AV-MAE checkpoints (models/catalog.json) and how to get one
/// as a bundle.
///
/// Why it shells out: downloading goes through `curl` (resumable with HTTP Range, a progress bar, proxies and TLS
/// handled) and conversion through `tools/convert_checkpoint.py` (the one place that knows Flax checkpoints), so
/// this file only wires them together and then proves the result by loading it with `AVMAE.Model`.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the released AV-MAE checkpoints, or download and convert one into a bundle.",
        subcommands: [List.self, Fetch.self]
    )
}

/// How to find models/catalog.json: --catalog, then $AVMAE_CATALOG, then ./models/catalog.json, then the
/// repository the binary was built in (the binary sits in <repo>/.build/<config>/).
struct CatalogOptions: ParsableArguments {
    @Option(help: "Path to catalog.json (default: $AVMAE_CATALOG, ./models/catalog.json, or the binary's repository).")
    var catalog: String?

    func locate() throws -> URL {
        if let path = catalog { return URL(fileURLWithPath: path) }
        var candidates = [URL]()
        if let path = ProcessInfo.processInfo.environment["AVMAE_CATALOG"] { candidates.append(URL(fileURLWithPath: path)) }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("models/catalog.json"))
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            candidates.append(dir.appendingPathComponent("models/catalog.json"))
            dir.deleteLastPathComponent()
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw ModelsError.catalogNotFound(candidates.map(\.path))
        }
        return found
    }

    func load() throws -> (Catalog, URL) {
        let url = try locate()
        do {
            return (try JSONDecoder().decode(Catalog.self, from: Data(contentsOf: url)), url)
        } catch {
            throw ModelsError.badCatalog(url.path, "\(error)")
        }
    }
}

/// models/catalog.json; keys as written there.
struct Catalog: Decodable {
    struct Metric: Decodable {
        let name: String
        let value: Double
        let unit: String
    }

    struct Entry: Decodable {
        let name: String
        let dataset: String
        let kind: ModelKind
        let modalities: [Modality]
        let clipSeconds: Double
        let frames: Int
        let stride: Int
        let resizeShort: Int
        let numClasses: Int
        let metric: Metric?
        let dir: String
        let checkpointURL: String
        let labelsURL: String?
        let labelsNote: String

        enum CodingKeys: String, CodingKey {
            case name, dataset, kind, modalities, frames, stride, metric, dir
            case clipSeconds = "clip_seconds", resizeShort = "resize_short", numClasses = "num_classes"
            case checkpointURL = "checkpoint_url", labelsURL = "labels_url", labelsNote = "labels_note"
        }
    }

    let baseURL: String
    let models: [Entry]

    enum CodingKeys: String, CodingKey {
        case baseURL = "base_url", models
    }

    func entry(_ name: String) throws -> Entry {
        guard let entry = models.first(where: { $0.name == name }) else {
            throw ModelsError.unknownModel(name, models.map(\.name))
        }
        return entry
    }
}

enum ModelsError: Error, CustomStringConvertible {
    case catalogNotFound([String])
    case badCatalog(String, String)
    case unknownModel(String, [String])
    case needsLabels(String, String)
    case commandFailed(String, Int32)
    case converterNotFound(String)

    var description: String {
        switch self {
        case .catalogNotFound(let tried):
            return "models/catalog.json not found (tried \(tried.joined(separator: ", "))); pass --catalog PATH or set AVMAE_CATALOG"
        case .badCatalog(let path, let why): return "\(path) is not a valid catalog: \(why)"
        case .unknownModel(let name, let known): return "no model \(name) in the catalog; known: \(known.joined(separator: ", "))"
        case .needsLabels(let name, let note):
            return "\(name) needs a label list: \(note). Pass --labels CSV (see models/labels/README.md) or --placeholder-labels"
        case .commandFailed(let command, let status): return "\(command) failed with exit status \(status)"
        case .converterNotFound(let path): return "converter not found at \(path); pass --converter PATH"
        }
    }
}

extension Models {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the catalog of released checkpoints as a table.")

        @OptionGroup var catalogOptions: CatalogOptions

        func run() throws {
            let (catalog, _) = try catalogOptions.load()
            let header = ["NAME", "KIND", "DATASET", "INPUTS", "CLASSES", "CLIP", "REPORTED"]
            let rows = catalog.models.map { m -> [String] in
                let metric = m.metric.map { "\($0.value)\($0.unit) \($0.name)" } ?? "-"
                return [m.name, m.kind.rawValue, m.dataset, m.modalities.map(\.rawValue).joined(separator: "+"),
                        m.numClasses > 0 ? String(m.numClasses) : "-", "\(m.clipSeconds) s", metric]
            }
            let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
            for row in [header] + rows {
                let cells = row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a released checkpoint (resumable), convert it into DIR/NAME and verify it loads.")

        @Argument(help: "Catalog name (see `avmae-serve models list`).")
        var name: String

        @Option(help: "Folder for the bundle (DIR/NAME) and the partial download.")
        var dir: String

        @Option(help: "Replace the catalog's base URL (mirrors, tests).")
        var baseURL: String?

        @Option(help: "index,mid,display_name CSV for a finetuned model (default: the catalog's official list, downloaded).")
        var labels: String?

        @Flag(help: "Write class_NNN placeholder labels instead of a real list (smoke tests only).")
        var placeholderLabels = false

        @Flag(help: "Replace an existing bundle DIR/NAME.")
        var force = false

        @Flag(help: "Keep the downloaded checkpoint (DIR/NAME.checkpoint) after converting.")
        var keepCheckpoint = false

        @Option(help: "Python with tools/requirements.txt (default: $AVMAE_PYTHON, <repo>/.venv-tools/bin/python, python3).")
        var python: String?

        @Option(help: "Path to convert_checkpoint.py (default: tools/ next to the catalog's models/ folder).")
        var converter: String?

        @OptionGroup var catalogOptions: CatalogOptions

        func validate() throws {
            if labels != nil && placeholderLabels { throw ValidationError("--labels and --placeholder-labels exclude each other") }
        }

        func run() throws {
            let (catalog, catalogURL) = try catalogOptions.load()
            let entry = try catalog.entry(name)
            let folder = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

            // Labels first: a missing list should fail before a 1.2 GB download, not after.
            var labelArgs = [String]()
            if entry.kind == .finetuned {
                if let labels {
                    labelArgs = ["--labels", labels]
                } else if placeholderLabels {
                    labelArgs = ["--placeholder-labels"]
                } else if let labelsURL = entry.labelsURL {
                    let file = folder.appendingPathComponent("\(name).labels.csv")
                    try download(labelsURL, to: file)
                    labelArgs = ["--labels", file.path]
                } else {
                    throw ModelsError.needsLabels(name, entry.labelsNote)
                }
            }

            let checkpoint = folder.appendingPathComponent("\(name).checkpoint")
            if !FileManager.default.fileExists(atPath: checkpoint.path) {
                let base = baseURL ?? catalog.baseURL
                let url = base.hasSuffix("/") ? base + entry.dir + "/checkpoint" : base + "/" + entry.dir + "/checkpoint"
                try download(url, to: checkpoint)
            } else {
                status("using the complete download \(checkpoint.path)")
            }

            let bundle = folder.appendingPathComponent(name)
            let repo = catalogURL.deletingLastPathComponent().deletingLastPathComponent()
            let tool = converter ?? repo.appendingPathComponent("tools/convert_checkpoint.py").path
            guard FileManager.default.fileExists(atPath: tool) else { throw ModelsError.converterNotFound(tool) }
            let venv = repo.appendingPathComponent(".venv-tools/bin/python").path
            let interpreter = python ?? ProcessInfo.processInfo.environment["AVMAE_PYTHON"]
                ?? (FileManager.default.fileExists(atPath: venv) ? venv : "python3")
            try runTool(interpreter, [tool, checkpoint.path, "--out", bundle.path, "--name", name,
                                      "--label-set", entry.dataset, "--clip-seconds", String(entry.clipSeconds),
                                      "--frames", String(entry.frames), "--stride", String(entry.stride),
                                      "--resize-short", String(entry.resizeShort)]
                        + labelArgs + (force ? ["--force"] : []), what: "conversion of \(checkpoint.path)")

            let model = try Model(bundle: bundle)
            let c = model.config
            status("verified \(bundle.path): \(c.kind.rawValue) \(c.encoder.rawValue) "
                  + "\(c.modalities.map(\.rawValue).joined(separator: "+")), \(model.parameterCount) parameters, "
                  + "\(model.labels.count) labels")
            if !keepCheckpoint { try FileManager.default.removeItem(at: checkpoint) }
        }

        /// curl into FILE.part, resuming what an earlier run left (HTTP Range), then rename to FILE.
        private func download(_ url: String, to file: URL) throws {
            let part = file.appendingPathExtension("part")
            let done = (try? FileManager.default.attributesOfItem(atPath: part.path)[.size] as? Int) ?? 0
            status("downloading \(url)" + (done > 0 ? " (resuming after \(done) bytes)" : ""))
            try runTool("curl", ["--fail", "--location", "--retry", "3", "--continue-at", "-", "--progress-bar",
                                 "--output", part.path, url], what: "download of \(url) (the partial file stays for a resume)")
            try? FileManager.default.removeItem(at: file)
            try FileManager.default.moveItem(at: part, to: file)
        }

        /// Progress goes to stderr, unbuffered, so it interleaves correctly with curl's and the converter's.
        private func status(_ line: String) {
            FileHandle.standardError.write(Data("fetch: \(line)\n".utf8))
        }

        private func runTool(_ executable: String, _ arguments: [String], what: String) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ModelsError.commandFailed("\(what) (\(executable))", process.terminationStatus)
            }
        }
    }
}
