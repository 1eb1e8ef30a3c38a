import AVMAE
import Foundation
import Serving

/// Where a bulk run's embeddings go: .npy files (NumPy's own format, float32) under OUTPUT/embeddings/, mirroring
/// each input's relative path, one file per modality and kind:
///
///     embeddings/a/b.mp4.audio.npy            (D)        the pooled embedding, /v1/embed's "embeddings"
///     embeddings/a/b.mp4.audio.windows.npy    (W, D)     with --windows: one per window
///     embeddings/a/b.mp4.audio.tokens.npy     (W, N, D)  with --tokens: every encoder token of every window
///
/// Each file is written under a temporary name, fsynced and renamed into place, so a file that exists is
/// whole; results.jsonl names it only after that.
struct BulkEmbeddingFiles: Sendable {
    static let folderName = "embeddings"

    struct Written: Sendable {
        var pooled: [String: BulkRecord.ArrayFile] = [:]
        var windows: [String: BulkRecord.ArrayFile]?
        var tokens: [String: BulkRecord.ArrayFile]?
    }

    let output: URL
    let windows: Bool
    let tokens: Bool

    func write(_ result: EmbedResult, for relativePath: String) throws -> Written {
        var written = Written()
        if windows { written.windows = [:] }
        if tokens { written.tokens = [:] }
        for modality in result.modalities {
            let name = modality.rawValue
            if let pooled = result.pooled[modality] {
                written.pooled[name] = try store(Tensor(shape: [pooled.count], data: pooled), relativePath, name)
            }
            if windows {
                let vectors = result.windows.compactMap { $0.pooled[modality] }  // (W, D)
                written.windows?[name] = try store(
                    Tensor(shape: [vectors.count, vectors.first?.count ?? 0], data: vectors.flatMap { $0 }),
                    relativePath, name + ".windows")
            }
            if tokens {
                let matrices = result.windows.compactMap { $0.tokens?[modality] }  // W x (N, D)
                let rows = matrices.first?.rows ?? 0, cols = matrices.first?.cols ?? 0
                written.tokens?[name] = try store(
                    Tensor(shape: [matrices.count, rows, cols], data: matrices.flatMap(\.data)),
                    relativePath, name + ".tokens")
            }
        }
        return written
    }

    func exists(_ file: String) -> Bool {
        FileManager.default.fileExists(atPath: output.appendingPathComponent(file).path)
    }

    private func store(_ tensor: Tensor, _ relativePath: String, _ suffix: String) throws -> BulkRecord.ArrayFile {
        let name = "\(Self.folderName)/\(relativePath).\(suffix).npy"
        try Self.writeDurably(NumpyArray.encode(tensor), to: output.appendingPathComponent(name))
        return BulkRecord.ArrayFile(file: name, shape: tensor.shape)
    }

    /// Temporary file, fsync, rename: after a crash the name holds the old file or the whole new one.
    private static func writeDurably(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
            guard rename(temporary.path, url.path) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
