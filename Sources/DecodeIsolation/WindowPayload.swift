import Media
import Serving

/// How one decoded window lies in the window memory: its waveform, then each video crop, back to back, in the
/// machine's own byte order (both ends are the same binary). This file is the only place that knows the element
/// types, so a change of frame type is a change of `FrameElement`.
enum WindowPayload {
    /// What a frame sample is, in Media's `ClipWindow` and Serving's `DecodedWindow` alike.
    typealias FrameElement = UInt8

    struct Layout: Codable, Equatable {
        var index: Int
        var startSeconds: Double
        /// nil when the window has no audio.
        var waveformSamples: Int?
        var crops: Int
        /// Elements per crop: frames x crop x crop x 3.
        var cropElements: Int
        /// Where the window starts in the window memory.
        var offset: Int
        /// Per crop, the clip time each frame shows (small: it travels in the control message).
        var frameTimes: [[Double]]

        var waveformBytes: Int { (waveformSamples ?? 0) * MemoryLayout<Float>.stride }
        var cropBytes: Int { cropElements * MemoryLayout<FrameElement>.stride }
        var byteCount: Int { waveformBytes + crops * cropBytes }
    }

    static func layout(of window: ClipWindow, offset: Int) -> Layout {
        let cropElements = window.videoCrops.first?.count ?? 0
        precondition(window.videoCrops.allSatisfy { $0.count == cropElements }, "crops of one window differ in size")
        return Layout(index: window.index, startSeconds: window.startSeconds, waveformSamples: window.waveform?.count,
                      crops: window.videoCrops.count, cropElements: cropElements, offset: offset,
                      frameTimes: window.frameTimes)
    }

    static func write(_ window: ClipWindow, as layout: Layout, to memory: SharedMemoryFile) throws {
        var offset = layout.offset
        if let waveform = window.waveform {
            try waveform.withUnsafeBytes { try memory.write($0, at: offset) }
            offset += layout.waveformBytes
        }
        for crop in window.videoCrops {
            try crop.withUnsafeBytes { try memory.write($0, at: offset) }
            offset += layout.cropBytes
        }
    }

    static func read(_ layout: Layout, from memory: SharedMemoryFile) throws -> DecodedWindow {
        var offset = layout.offset
        let waveform = try layout.waveformSamples.map { samples -> [Float] in
            defer { offset += layout.waveformBytes }
            return try array(of: Float.self, count: samples, from: memory, at: offset)
        }
        let crops = try (0..<layout.crops).map { _ -> [FrameElement] in
            defer { offset += layout.cropBytes }
            return try array(of: FrameElement.self, count: layout.cropElements, from: memory, at: offset)
        }
        return DecodedWindow(index: layout.index, startSeconds: layout.startSeconds, waveform: waveform, videoCrops: crops,
                             frameTimes: layout.frameTimes)
    }

    private static func array<Element>(of: Element.Type, count: Int, from memory: SharedMemoryFile,
                                       at offset: Int) throws -> [Element] {
        try [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            try memory.read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            initialized = count
        }
    }
}
