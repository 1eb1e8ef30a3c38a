import HTTPServer
import Serving

/// One line of results.jsonl: which file (and which version of it: size and modification time), and what came
/// of it. `ok` lines carry what /v1/classify answers (labels, timeline) or where /v1/embed's vectors went (.npy
/// files, named relative to the output folder); `error` lines carry the code and message the HTTP API would have
/// answered with, and whether a rerun tries the file again.
struct BulkRecord: Codable, Sendable, Equatable {
    enum Status: String, Codable, Sendable { case ok, error }

    struct Failure: Codable, Sendable, Equatable {
        var code: String
        var message: String
        /// The server would have answered 5xx (or the file could not be read): not the file's fault, so a
        /// rerun tries it again. Anything else is final for this version of the file.
        var retryable: Bool
    }

    struct Label: Codable, Sendable, Equatable {
        var index: Int
        var id: String
        var name: String
        var score: Float
    }

    struct WindowLabels: Codable, Sendable, Equatable {
        var index: Int
        var startSeconds: Double
        var labels: [Label]
    }

    /// A .npy file (little-endian float32, C order) and its shape.
    struct ArrayFile: Codable, Sendable, Equatable {
        var file: String
        var shape: [Int]
    }

    var path: String
    var size: Int
    var mtimeNs: Int64
    var status: Status
    var error: Failure?
    var model: String?
    /// The bundle's version (as /v1/models shows it): a rerun with other weights does the file again.
    var modelVersion: String?
    var modalities: [String]?
    var durationSeconds: Double?
    var windowsUsed: Int?
    // classify
    var labelSet: String?
    var aggregation: String?
    var labels: [Label]?
    var timeline: [WindowLabels]?
    // embed: per modality, the pooled vector (D); with --windows one per window (W, D); with --tokens (W, N, D)
    var dim: Int?
    var embeddings: [String: ArrayFile]?
    var windowEmbeddings: [String: ArrayFile]?
    var tokens: [String: ArrayFile]?
    var windowStarts: [Double]?

    init(_ input: BulkInput, status: Status) {
        path = input.relativePath
        size = input.size
        mtimeNs = input.modifiedNanoseconds
        self.status = status
    }

    init(_ input: BulkInput, failure: ServingError) {
        self.init(input, status: .error)
        let answer = APIError(failure)
        error = Failure(code: answer.code, message: answer.message, retryable: answer.status >= 500)
    }

    /// A file that could not be read at all (permissions, vanished, I/O error): retried by the next run.
    init(_ input: BulkInput, unreadable why: String) {
        self.init(input, status: .error)
        error = Failure(code: "unreadable_file", message: "cannot read \(input.file): \(why)", retryable: true)
    }

    /// The answer came but its .npy files could not be written (disk full, say): retried by the next run.
    init(_ input: BulkInput, unwritable why: String) {
        self.init(input, status: .error)
        error = Failure(code: "output_failed", message: "cannot write the embedding files: \(why)", retryable: true)
    }

    init(_ input: BulkInput, classified result: ClassifyResult) {
        self.init(input, status: .ok)
        model = result.model
        modelVersion = result.modelVersion
        modalities = result.modalities.map(\.rawValue)
        durationSeconds = result.durationSeconds
        windowsUsed = result.windowsUsed
        labelSet = result.labelSet.rawValue
        aggregation = result.aggregation.rawValue
        labels = result.labels.map(Label.init)
        timeline = result.timeline?.map { WindowLabels(index: $0.index, startSeconds: $0.startSeconds,
                                                       labels: $0.labels.map(Label.init)) }
    }

    init(_ input: BulkInput, embedded result: EmbedResult, arrays: BulkEmbeddingFiles.Written) {
        self.init(input, status: .ok)
        model = result.model
        modelVersion = result.modelVersion
        modalities = result.modalities.map(\.rawValue)
        durationSeconds = result.durationSeconds
        windowsUsed = result.windows.count
        dim = result.pooled.values.first?.count ?? 0
        embeddings = arrays.pooled
        windowEmbeddings = arrays.windows
        tokens = arrays.tokens
        windowStarts = arrays.windows == nil && arrays.tokens == nil ? nil : result.windows.map(\.startSeconds)
    }

    /// Every .npy file this line names.
    var arrayFiles: [ArrayFile] {
        [embeddings, windowEmbeddings, tokens].compactMap { $0 }.flatMap(\.values)
    }

    /// Whether a rerun may skip `input` because of this line: same file version, and either done by the same
    /// model version (with its .npy files still there) or failed for a reason of the file's own.
    func settles(_ input: BulkInput, modelVersion current: String, arrayExists: (String) -> Bool) -> Bool {
        guard path == input.relativePath, size == input.size, mtimeNs == input.modifiedNanoseconds else { return false }
        switch status {
        case .ok: return modelVersion == current && arrayFiles.allSatisfy { arrayExists($0.file) }
        case .error: return !(error?.retryable ?? true)
        }
    }
}

extension BulkRecord.Label {
    init(_ label: LabelScore) {
        self.init(index: label.index, id: label.mid, name: label.name, score: label.score)
    }
}
