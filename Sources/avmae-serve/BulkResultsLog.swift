import ArgumentParser
import Foundation

/// results.jsonl, the record of a bulk run and what makes it resumable. Each finished file appends one line and
/// fsyncs it before the next, so a run killed at any moment (SIGKILL, power cut, an evicted pod) keeps every
/// finished file's line, and at most the last line is torn; opening the file cuts that line off. A later line
/// for the same path replaces an earlier one. An exclusive lock keeps two runs from writing into one folder.
///
/// Threading: `append` may be called from any thread; lines never interleave.
final class BulkResultsLog: @unchecked Sendable {
    static let fileName = "results.jsonl"

    /// The latest line per path from earlier runs.
    let earlier: [String: BulkRecord]
    /// Complete lines that did not parse as a record (edited by hand, say); their files are done again.
    let unreadableLines: Int
    /// Bytes of a torn last line that opening cut off.
    let tornBytes: Int

    private let handle: FileHandle  // guarded by lock
    private let lock = NSLock()
    private let encoder: JSONEncoder

    init(folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent(Self.fileName)
        if !FileManager.default.fileExists(atPath: url.path),
           !FileManager.default.createFile(atPath: url.path, contents: nil) {
            throw ValidationError("cannot create \(url.path)")
        }
        handle = try FileHandle(forUpdating: url)
        guard flock(handle.fileDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            throw ValidationError("\(url.path) is in use by another run (it holds the file's lock); "
                                  + "give each run, or each --shard, its own --output folder")
        }
        let contents = try handle.readToEnd() ?? Data()
        let complete = contents.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? contents.startIndex
        tornBytes = contents.endIndex - complete
        if tornBytes > 0 {
            try handle.truncate(atOffset: UInt64(complete))
            try handle.synchronize()
        }
        try handle.seekToEnd()

        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var earlier: [String: BulkRecord] = [:]
        var unreadable = 0
        for line in contents[..<complete].split(separator: UInt8(ascii: "\n")) {
            guard let record = try? decoder.decode(BulkRecord.self, from: Data(line)) else {
                unreadable += 1
                continue
            }
            earlier[record.path] = record
        }
        self.earlier = earlier
        unreadableLines = unreadable

        encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
    }

    deinit { try? handle.close() }

    /// Writes the line and returns once it is on disk.
    func append(_ record: BulkRecord) throws {
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        try lock.withLock {
            try handle.write(contentsOf: line)
            try handle.synchronize()
        }
    }
}
