// Decode benchmark: times MediaDecoder on every clip in a folder (made by bench/decode.sh) and prints the
// median over repeated runs, per clip and configuration. Usage: media-bench DIR [RUNS]
import Foundation
import Media

struct Configuration {
    let name: String
    let decoder: MediaDecoder
    let policy: ClipPolicy
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func time(_ configuration: Configuration, _ bytes: [UInt8], runs: Int) throws -> Double {
    _ = try configuration.decoder.decode(bytes, policy: configuration.policy)
    let samples = try (0..<runs).map { _ in
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try configuration.decoder.decode(bytes, policy: configuration.policy)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }
    return median(samples)
}

func run() throws {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2 else { fatalError("usage: media-bench DIR [RUNS]") }
    let folder = URL(fileURLWithPath: arguments[1])
    let runs = arguments.count > 2 ? Int(arguments[2])! : 9
    let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    let pretrained = ClipPolicy()
    let finetuned = ClipPolicy(frames: 32, stride: 2, resizeShort: 256)
    let configurations = [
        Configuration(name: "av pretrained 16x4@224, 1 thread", decoder: MediaDecoder(), policy: pretrained),
        Configuration(name: "av pretrained 16x4@224, 2 threads", decoder: MediaDecoder(videoDecoderThreads: 2), policy: pretrained),
        Configuration(name: "video only pretrained 16x4@224, 1 thread", decoder: MediaDecoder(), policy: ClipPolicy(wantAudio: false)),
        Configuration(name: "av finetuned 32x2@256, 1 thread", decoder: MediaDecoder(), policy: finetuned),
        Configuration(name: "av finetuned 32x2@256, 2 threads", decoder: MediaDecoder(videoDecoderThreads: 2), policy: finetuned),
        Configuration(name: "av finetuned 4 crops, 1 thread", decoder: MediaDecoder(),
                      policy: ClipPolicy(frames: 32, stride: 2, resizeShort: 256, crops: 4)),
        Configuration(name: "audio only (sndfile preferred)", decoder: MediaDecoder(), policy: ClipPolicy(wantVideo: false)),
        Configuration(name: "audio only (FFmpeg only)", decoder: MediaDecoder(preferSndfile: false), policy: ClipPolicy(wantVideo: false)),
    ]
    print("clip | configuration | median ms (\(runs) runs)")
    for file in files {
        let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
        for configuration in configurations {
            do {
                let ms = try time(configuration, bytes, runs: runs)
                print("\(file) | \(configuration.name) | \(String(format: "%.1f", ms))")
            } catch {
                // A clip without the stream a configuration wants is not a data point.
                continue
            }
        }
    }
}

try run()
