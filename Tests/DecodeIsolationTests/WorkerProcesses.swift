import Foundation

/// The decode workers of this process, found through /proc as an operator would find them.
enum WorkerProcesses {
    /// Children of this process that run `decode-worker`.
    static func children(of parent: Int32 = getpid()) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
        let pids = tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return pids.filter { pid in
            let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return String(decoding: command, as: UTF8.self).contains("decode-worker")
        }
    }

    /// A worker is in the middle of a clip exactly while its clip memory (descriptor 4) holds bytes: the daemon
    /// writes the clip there before asking and empties it when the clip is done.
    static func isBusy(_ pid: Int32) -> Bool {
        var info = stat()
        return stat("/proc/\(pid)/fd/4", &info) == 0 && info.st_size > 0
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
