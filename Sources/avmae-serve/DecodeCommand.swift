import ArgumentParser
import Foundation
import Media

/// Decodes files exactly as the server's decoder does and prints what it found, one JSON line per file: the way
/// to check an upload without a model, and the driver of the media sweep under valgrind and guard pages
/// (bench/media-sweep). A file that fails prints its error and never stops the run.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode media files as the server does and print one JSON line per file (no model needed)."
    )

    @Argument(help: "Files or folders (searched recursively).")
    var paths: [String]

    @Option(help: "Temporal crops per window: 1 or 4.")
    var crops: Int = 1

    @Option(help: "Video frames per crop (16 pretrained, 32 finetuned).")
    var frames: Int = 16

    @Option(help: "Frame spacing in 25 fps frames (4 pretrained, 2 finetuned).")
    var stride: Int = 4

    @Option(help: "Short side after resizing (224 pretrained, 256 finetuned).")
    var resizeShort: Int = 224

    @Flag(help: "Decode only the sound.")
    var audioOnly = false

    @Flag(help: "Decode only the pictures.")
    var videoOnly = false

    @Flag(help: "Decode window by window from the file, as ?stream=true does.")
    var stream = false

    struct Report: Encodable {
        var file: String
        var ok: Bool
        var error: String?
        var container: String?
        var audio: String?
        var video: String?
        var durationSeconds: Double?
        var windows: Int?
        var milliseconds: Double
    }

    func validate() throws {
        guard crops == 1 || crops == 4 else { throw ValidationError("--crops is 1 or 4") }
        guard !(audioOnly && videoOnly) else { throw ValidationError("--audio-only and --video-only exclude each other") }
        guard frames > 0, stride > 0, resizeShort >= 224 else { throw ValidationError("frames and stride > 0, resize-short >= 224") }
    }

    func run() throws {
        let decoder = MediaDecoder()
        let policy = ClipPolicy(frames: frames, stride: stride, resizeShort: resizeShort,
                                wantAudio: !videoOnly, wantVideo: !audioOnly, crops: crops)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var failures = 0
        for file in try Self.files(in: paths) {
            let start = DispatchTime.now().uptimeNanoseconds
            var report = Report(file: file, ok: false, milliseconds: 0)
            do {
                let info: MediaInfo, windows: Int
                if stream {
                    (info, windows) = try Self.stream(file, policy: policy)
                } else {
                    let clip = try decoder.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: file))), policy: policy)
                    (info, windows) = (clip.info, clip.windows.count)
                }
                report.ok = true
                report.container = info.container
                report.audio = info.audio.map { "\($0.codec) \($0.sampleRate) Hz x\($0.channels)" }
                report.video = info.video.map { "\($0.codec) \($0.width)x\($0.height) \($0.fps) fps rotate \($0.rotation)" }
                report.durationSeconds = info.durationSeconds
                report.windows = windows
            } catch {
                failures += 1
                report.error = "\(error)"
            }
            report.milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
        FileHandle.standardError.write(Data("decode: \(failures) of the files did not decode\n".utf8))
    }

    /// The file read where it lies, as a spooled upload is, one window at a time, within the server's default
    /// streaming limits (2 GiB, 4 h).
    private static func stream(_ file: String, policy: ClipPolicy) throws -> (MediaInfo, Int) {
        guard let opened = MediaFile(path: file) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: file])
        }
        let windows = try ClipWindowStream(source: .file(opened), policy: policy,
                                           limits: MediaLimits(maxBytes: 2 << 30, maxDurationSeconds: 4 * 3600))
        var count = 0
        while try windows.next() != nil { count += 1 }
        return (windows.info, count)
    }

    static func files(in paths: [String]) throws -> [String] {
        try paths.flatMap { path -> [String] in
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                throw ValidationError("no such file or folder: \(path)")
            }
            guard isFolder.boolValue else { return [path] }
            let items = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
            return items.sorted().map { (path as NSString).appendingPathComponent($0) }.filter {
                var folder: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &folder) && !folder.boolValue
            }
        }
    }
}
