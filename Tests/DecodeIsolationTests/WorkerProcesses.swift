import Foundation

/// The decode workers of this process, found through /proc as an operator would find them.
enum WorkerProcesses {
    /// Children of this process that run `decode-worker`, found by their parent pid in /proc/PID/stat.
    static func children(of parent: Int32 = getpid()) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            // "pid (comm) state ppid ...": the command may hold spaces, so read after its closing parenthesis.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { return false }
            let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return String(decoding: command, as: UTF8.self).contains("decode-worker")
        }
    }

    /// A worker is mid-clip exactly while its clip memory (descriptor 4) has file offset 1: the daemon sets it
    /// before handing over a clip and clears it when the clip is done (/proc/PID/fdinfo/4, "pos:").
    static func isBusy(_ pid: Int32) -> Bool {
        let info = (try? String(contentsOfFile: "/proc/\(pid)/fdinfo/4", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").contains { $0.hasPrefix("pos:") && $0.dropFirst(4).trimmingCharacters(in: .whitespaces) == "1" }
    }

    /// Polls every millisecond until `pid` is busy; false after `timeout` seconds.
    static func waitUntilBusy(_ pid: Int32, timeout: Double) throws -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if isBusy(pid) { return true }
            usleep(1000)
        }
        return false
    }
}
