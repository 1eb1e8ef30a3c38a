import Foundation
import Media

/// Times `MediaDecoder` on every clip in a folder (bench/decode.sh makes them) under the configurations the
/// server uses, so `avmae-serve bench --decode DIR` can report decode cost as a share of an inference measured
/// in the same run.
struct DecodeBench {
    struct Row: Codable {
        var clip: String, configuration: String, milliseconds: Double
    }

    let folder: URL
    let runs: Int

    private static let configurations: [(String, MediaDecoder, ClipPolicy)] = [
        ("av pretrained 16x4@224, 1 thread", MediaDecoder(), ClipPolicy()),
        ("av pretrained 16x4@224, 2 threads", MediaDecoder(videoDecoderThreads: 2), ClipPolicy()),
        ("av finetuned 32x2@256, 1 thread", MediaDecoder(), ClipPolicy(frames: 32, stride: 2, resizeShort: 256)),
        ("av finetuned 4 crops, 1 thread", MediaDecoder(), ClipPolicy(frames: 32, stride: 2, resizeShort: 256, crops: 4)),
        ("audio only (sndfile preferred)", MediaDecoder(), ClipPolicy(wantVideo: false)),
        ("audio only (FFmpeg only)", MediaDecoder(preferSndfile: false), ClipPolicy(wantVideo: false)),
    ]

    func run() throws -> [Row] {
        var rows = [Row]()
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            for (name, decoder, policy) in Self.configurations {
                // A clip without the stream a configuration wants is not a data point.
                guard (try? decoder.decode(bytes, policy: policy)) != nil else { continue }
                var times = [Double]()
                for _ in 0..<runs {
                    let start = Date()
                    _ = try decoder.decode(bytes, policy: policy)
                    times.append(Date().timeIntervalSince(start) * 1000)
                }
                rows.append(Row(clip: file, configuration: name, milliseconds: times.sorted()[times.count / 2]))
            }
        }
        return rows
    }
}
