import ArgumentParser
import Foundation

/// One file of a bulk run. `relativePath` is its name in the results and in `--shard`: the path below the folder
/// given on the command line, or the file name for a file given directly. `size` and `modifiedNanoseconds` say
/// whether an earlier run's result is still about this file.
struct BulkInput: Sendable, Equatable {
    var file: String
    var relativePath: String
    var size: Int
    var modifiedNanoseconds: Int64
}

enum BulkInputs {
    /// Every regular file named by `paths` (folders searched recursively, symbolic links followed), sorted by
    /// relative path. Names starting with "." and the `output` folder (when it lies inside an input folder) are
    /// left out. Refuses a missing path, and two inputs with one relative path (their results would collide).
    static func list(_ paths: [String], output: String) throws -> [BulkInput] {
        let outputFolder = FileStatus(output)
        var inputs: [BulkInput] = []
        for path in paths {
            guard let status = FileStatus(path) else { throw ValidationError("no such file or folder: \(path)") }
            if status.isRegularFile {
                inputs.append(BulkInput(file: path, relativePath: (path as NSString).lastPathComponent,
                                        size: status.size, modifiedNanoseconds: status.modifiedNanoseconds))
                continue
            }
            guard status.isDirectory, let walker = FileManager.default.enumerator(atPath: path) else {
                throw ValidationError("not a regular file or folder: \(path)")
            }
            while let relative = walker.nextObject() as? String {
                let file = (path as NSString).appendingPathComponent(relative)
                guard let entry = FileStatus(file) else { continue }  // a dangling link
                if (relative as NSString).lastPathComponent.hasPrefix(".") || entry.isSameFile(as: outputFolder) {
                    walker.skipDescendants()
                    continue
                }
                guard entry.isRegularFile else { continue }
                inputs.append(BulkInput(file: file, relativePath: relative, size: entry.size,
                                        modifiedNanoseconds: entry.modifiedNanoseconds))
            }
        }
        inputs.sort { $0.relativePath < $1.relativePath }
        for (first, second) in zip(inputs, inputs.dropFirst()) where first.relativePath == second.relativePath {
            throw ValidationError("\(first.file) and \(second.file) are both '\(first.relativePath)' in the results; "
                                  + "run them into separate --output folders")
        }
        return inputs
    }
}

/// stat(2) of a path, following symbolic links: FileManager's attributes describe the link itself and round
/// the modification time to a Double.
private struct FileStatus {
    private let info: stat

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.info = info
    }

    var isRegularFile: Bool { info.st_mode & S_IFMT == S_IFREG }
    var isDirectory: Bool { info.st_mode & S_IFMT == S_IFDIR }
    var size: Int { Int(info.st_size) }
    var modifiedNanoseconds: Int64 { Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec) }

    func isSameFile(as other: FileStatus?) -> Bool {
        guard let other else { return false }
        return info.st_dev == other.info.st_dev && info.st_ino == other.info.st_ino
    }
}
