import Checksum
import Foundation

/// A bundle's version: the first 12 hex digits of a SHA-256 over everything that changes an answer. For each of
/// config.json, labels.csv and model.safetensors, in that order: the file name, a NUL, the size as 8 bytes
/// little-endian, the bytes. Renaming or copying the folder keeps the version; editing any of the three changes it.
enum BundleDigest {
    static let files = ["config.json", "labels.csv", "model.safetensors"]

    static func version(of bundle: URL) throws -> String {
        var hash = SHA256()
        for name in files {
            let file = bundle.appendingPathComponent(name)
            // A bundle without labels (a pretrained embedder) hashes as an empty labels.csv.
            let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? nil
            hash.update(Array(name.utf8) + [0])
            hash.update(withUnsafeBytes(of: UInt64(size ?? 0).littleEndian) { Array($0) })
            if size != nil { try hash.update(contentsOf: file) }
        }
        return String(hash.hex().prefix(12))
    }
}
