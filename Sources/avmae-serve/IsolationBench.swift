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
struct IsolationBench {
    struct Row: Codable {
        var clip: String, request: String
        var inProcessMs: Double, workerMs: Double, addedMs: Double, addedShare: Double
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
        let requests: [(String, Set<Modality>, CropCount)] = [("audio", [.audio], .one), ("video 1 crop", [.audio, .video], .one),
                                                               ("video 4 crops", [.audio, .video], .four)]
        var rows = [Row]()
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            for (name, want, crops) in requests {
                // A clip without the streams a request wants is not a data point.
                guard let decoded = try? inProcess.decode(bytes, want: want, crops: crops), !decoded.windows.isEmpty,
                      decoded.hasVideo == want.contains(.video) else { continue }
                _ = try worker.decode(bytes, want: want, crops: crops)  // warm
                var local = [Double](), isolated = [Double]()
                for _ in 0..<runs {
                    local.append(try milliseconds { _ = try inProcess.decode(bytes, want: want, crops: crops) })
                    isolated.append(try milliseconds { _ = try worker.decode(bytes, want: want, crops: crops) })
                }
                let added = median(zip(isolated, local).map { $0 - $1 })
                rows.append(Row(clip: file, request: name, inProcessMs: median(local), workerMs: median(isolated),
                                addedMs: added, addedShare: added / median(local)))
            }
        }
        return rows
    }

    private func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
