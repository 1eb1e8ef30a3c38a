import AVMAE
import DecodeIsolation
import Foundation
import Logging
import Media
import Metrics
import Serving

/// What decoding in a sandboxed worker adds to a request: each clip in a folder decoded in-process
/// (`MediaClipDecoder`) and through a worker (`ProcessClipDecoder`), alternately, for the audio, 1-crop and
/// 4-crop requests of a finetuned model (32 frames, stride 2, 256 px). The added time is the median of the
/// paired differences; its share is of the in-process median.
///
/// Both wall time and CPU time: on a machine whose cores are shared, wall time also holds the waits for a core
/// after each hand-over between the two processes. CPU time: the calling thread's (CLOCK_THREAD_CPUTIME_ID) for
/// in-process decoding, plus the worker's (its schedstat, in ns) for worker decoding.
struct IsolationBench {
    struct Row: Codable {
        var clip: String, request: String
        var inProcessMs: Double, workerMs: Double, addedMs: Double, addedShare: Double
        var inProcessCpuMs: Double, workerCpuMs: Double, addedCpuMs: Double, addedCpuShare: Double
    }

    let folder: URL
    let runs: Int

    func run() throws -> [Row] {
        var configuration = DecodeWorkerPool.Configuration()
        configuration.workers = 1
        let pool = try DecodeWorkerPool(configuration: configuration, logger: Logger(label: "bench"),
                                        metricsFactory: NOOPMetricsHandler.instance)
        defer { pool.shutdown() }
        let config = DemoBundle.config()  // finetuned: 32 frames at stride 2, short side 256
        let limits = MediaLimits()
        let inProcess = MediaClipDecoder(config: config, limits: limits, hopSeconds: nil)
        let worker = ProcessClipDecoder(pool: pool, config: config, limits: limits, hopSeconds: nil)
        let workerPid = try Self.onlyChild()
        let requests: [(String, Set<Modality>, CropCount)] = [("audio", [.audio], .one), ("video 1 crop", [.audio, .video], .one),
                                                               ("video 4 crops", [.audio, .video], .four)]
        // An empty upload: refused at once on both sides, so the worker's figure is the protocol's fixed cost.
        var rows = [try compare("(empty upload)", "round trip", [], want: [.audio], crops: .one, inProcess, worker, workerPid)]
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            for (name, want, crops) in requests {
                // A clip without the streams a request wants is not a data point.
                guard let decoded = try? inProcess.decode(bytes, want: want, crops: crops), !decoded.windows.isEmpty,
                      decoded.hasVideo == want.contains(.video) else { continue }
                rows.append(try compare(file, name, bytes, want: want, crops: crops, inProcess, worker, workerPid))
            }
        }
        return rows
    }

    /// Alternates the two decoders `runs` times after one warm-up call each; errors count like answers.
    private func compare(_ clip: String, _ request: String, _ bytes: [UInt8], want: Set<Modality>, crops: CropCount,
                         _ inProcess: ClipDecoding, _ worker: ClipDecoding, _ workerPid: Int32) throws -> Row {
        _ = try? inProcess.decode(bytes, want: want, crops: crops)
        _ = try? worker.decode(bytes, want: want, crops: crops)
        var local = [Double](), isolated = [Double](), localCpu = [Double](), isolatedCpu = [Double]()
        for _ in 0..<runs {
            let (wall, cpu) = try measure(workerPid) { _ = try? inProcess.decode(bytes, want: want, crops: crops) }
            local.append(wall)
            localCpu.append(cpu)
            let (workerWall, workerCpu) = try measure(workerPid) { _ = try? worker.decode(bytes, want: want, crops: crops) }
            isolated.append(workerWall)
            isolatedCpu.append(workerCpu)
        }
        let added = median(zip(isolated, local).map { $0 - $1 })
        let addedCpu = median(zip(isolatedCpu, localCpu).map { $0 - $1 })
        return Row(clip: clip, request: request, inProcessMs: median(local), workerMs: median(isolated),
                   addedMs: added, addedShare: added / median(local), inProcessCpuMs: median(localCpu),
                   workerCpuMs: median(isolatedCpu), addedCpuMs: addedCpu, addedCpuShare: addedCpu / median(localCpu))
    }

    /// Wall and CPU milliseconds of `body`; CPU is this thread's plus the worker's.
    private func measure(_ workerPid: Int32, _ body: () -> Void) throws -> (wall: Double, cpu: Double) {
        let cpuStart = Self.threadCpuNanoseconds() + (try Self.cpuNanoseconds("/proc/\(workerPid)/schedstat"))
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let cpuEnd = Self.threadCpuNanoseconds() + (try Self.cpuNanoseconds("/proc/\(workerPid)/schedstat"))
        return (wall, Double(cpuEnd - cpuStart) / 1e6)
    }

    /// This thread's CPU time, exact to the moment (schedstat lags by up to a tick for a running task).
    private static func threadCpuNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// The first schedstat field: nanoseconds the task has run (current for the worker, which sleeps when read).
    private static func cpuNanoseconds(_ path: String) throws -> UInt64 {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: " ").first.flatMap { UInt64($0) } ?? 0
    }

    /// The pool's one worker: this process's only child.
    private static func onlyChild() throws -> Int32 {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
        let children = try tasks.flatMap { task in
            try String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8).split(separator: " ")
                .compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        guard children.count == 1 else { throw BenchError.workers(children.count) }
        return children[0]
    }

    enum BenchError: Error { case workers(Int) }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
