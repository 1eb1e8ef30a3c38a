import Dispatch
import Foundation
import Logging

/// What a bulk run shows while it works, on stderr so stdout stays free: on a terminal, a bar redrawn in place
/// (files done of this run's total, files per second, time left, errors); anywhere else (a log file, a pod's log)
/// one log line every `logInterval` seconds. The rate counts this run only, so a resumed run's ETA is honest.
///
/// Owner: the bulk command, from just before the first file (the rate's start) to `finish()`; `finished(ok:)` may be called from any thread.
final class BulkProgress: @unchecked Sendable {
    private let total: Int
    private let logger: Logger
    private let terminal: Bool
    private let logInterval: Double
    private let queue = DispatchQueue(label: "avmae.bulk.progress")
    private let timer: DispatchSourceTimer
    private let lock = NSLock()
    private var done = 0      // guarded by lock
    private var failed = 0    // guarded by lock
    private let started = DispatchTime.now()

    init(total: Int, logger: Logger, terminal: Bool = isatty(STDERR_FILENO) == 1, logInterval: Double = 10) {
        self.total = total
        self.logger = logger
        self.terminal = terminal
        self.logInterval = logInterval
        timer = DispatchSource.makeTimerSource(queue: queue)
    }

    func start() {
        let interval = terminal ? 0.25 : logInterval
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [self] in show() }
        timer.activate()
    }

    func finished(ok: Bool) {
        lock.withLock {
            done += 1
            if !ok { failed += 1 }
        }
    }

    /// Stops the display; the bar's last state stays on screen with its line ended.
    func finish() {
        timer.cancel()
        queue.sync {
            if terminal {
                show()
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
    }

    var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }

    private func show() {
        let (done, failed) = lock.withLock { (self.done, self.failed) }
        let elapsed = seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let left = rate > 0 ? Self.duration(Double(total - done) / rate) : "?"
        let rateText = String(format: "%.2f", rate)
        if terminal {
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            let line = "\r\u{1B}[K[\(bar)] \(done)/\(total)  \(rateText) files/s  ETA \(left)"
                + (failed > 0 ? "  \(failed) error\(failed == 1 ? "" : "s")" : "")
            FileHandle.standardError.write(Data(line.utf8))
        } else {
            logger.info("progress", metadata: [
                "done": "\(done)", "total": "\(total)", "errors": "\(failed)", "files_per_second": "\(rateText)",
                "eta": "\(left)",
            ])
        }
    }

    /// 45s, 3m05s, 2h07m.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }
}
