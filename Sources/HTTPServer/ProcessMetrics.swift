import Foundation
import Metrics

/// The standard Prometheus `process_*` metrics, read from /proc/self each time /metrics is scraped.
final class ProcessMetrics: @unchecked Sendable {
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let startTime: Gauge
    private let cpuSeconds: FloatingPointCounter
    private let lock = NSLock()
    private var reportedCPUSeconds = 0.0  // guarded by lock: the counter only takes increments

    init(factory: MetricsFactory) {
        residentMemory = Gauge(label: "process_resident_memory_bytes", factory: factory)
        virtualMemory = Gauge(label: "process_virtual_memory_bytes", factory: factory)
        openFDs = Gauge(label: "process_open_fds", factory: factory)
        maxFDs = Gauge(label: "process_max_fds", factory: factory)
        startTime = Gauge(label: "process_start_time_seconds", factory: factory)
        cpuSeconds = FloatingPointCounter(label: "process_cpu_seconds_total", factory: factory)
    }

    func update() {
        if let stat = Self.stat() {
            residentMemory.record(stat.residentBytes)
            virtualMemory.record(stat.virtualBytes)
            startTime.record(stat.startTimeSeconds)
            lock.withLock {
                if stat.cpuSeconds > reportedCPUSeconds {
                    cpuSeconds.increment(by: stat.cpuSeconds - reportedCPUSeconds)
                    reportedCPUSeconds = stat.cpuSeconds
                }
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFDs.record(fds.count)
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.record(Double(limit.rlim_cur)) }
    }

    private struct Stat {
        var cpuSeconds: Double
        var virtualBytes: Double
        var residentBytes: Double
        var startTimeSeconds: Double
    }

    /// /proc/self/stat fields (proc(5)): 14 utime, 15 stime, 22 starttime (clock ticks since boot),
    /// 23 vsize (bytes), 24 rss (pages). The command name (field 2) may hold spaces, so split after its ')'.
    private static func stat() -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ").map(String.init)
        // fields[0] is field 3 (state), so field n is fields[n - 3].
        func field(_ n: Int) -> Double { n - 3 < fields.count ? Double(fields[n - 3]) ?? 0 : 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        return Stat(cpuSeconds: (field(14) + field(15)) / ticks, virtualBytes: field(23),
                    residentBytes: field(24) * pageSize, startTimeSeconds: bootTime() + field(22) / ticks)
    }

    /// Seconds since the epoch at boot, from the `btime` line of /proc/stat.
    private static func bootTime() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return 0 }
        let line = text.split(separator: "\n").first { $0.hasPrefix("btime ") }
        return line.flatMap { Double($0.dropFirst(6)) } ?? 0
    }
}
