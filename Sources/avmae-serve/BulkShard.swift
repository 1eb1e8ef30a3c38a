import ArgumentParser

/// `--shard I/N`: the I-th (from 0) of N parts of a dataset. A file belongs to the part its relative path hashes
/// to, so every machine listing the same dataset agrees on the split whatever order it lists files in, and a
/// file added later does not move the others.
struct BulkShard: Equatable, Sendable, CustomStringConvertible, ExpressibleByArgument {
    let index: Int
    let count: Int

    init?(argument: String) {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1,
              (0..<count).contains(index) else { return nil }
        self.index = index
        self.count = count
    }

    var description: String { "\(index)/\(count)" }

    func contains(_ relativePath: String) -> Bool {
        Self.hash(relativePath) % UInt64(count) == UInt64(index)
    }

    /// 64-bit FNV-1a of the path's UTF-8 bytes: stable across runs, machines and Swift versions (Swift's own
    /// `Hasher` is seeded per process), and a few lines in any language for whoever checks a split.
    static func hash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
    }
}
