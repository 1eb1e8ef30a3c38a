import AVMAE
import Media

/// A recording decoded window by window for streaming, holding only a few windows at a time.
public protocol WindowSource: AnyObject {
    /// The next window, or nil after the last; throws `ServingError`.
    func next() throws -> DecodedWindow?
    /// Seconds of the recording decoded so far: its length once `next()` has returned nil.
    var decodedSeconds: Double { get }
    /// The reader stops early (client gone, failure): give back what the decoding holds.
    func close()
}

extension ClipDecoding {
    /// Decoders that cannot stream say so; the service answers such a request with this error.
    public func openStream(_ source: MediaSource) throws -> WindowSource {
        throw ServingError.unsupportedTask("this server's decoder cannot stream recordings")
    }
}

/// In-process streaming: `Media.AudioWindowStream`, its errors translated as the whole-clip decoder's are.
final class AudioWindowSource: WindowSource {
    private let stream: AudioWindowStream

    init(_ stream: AudioWindowStream) {
        self.stream = stream
    }

    func next() throws -> DecodedWindow? {
        do {
            return try stream.next().map {
                DecodedWindow(index: $0.index, startSeconds: $0.startSeconds, waveform: $0.waveform, videoCrops: [])
            }
        } catch {
            throw MediaClipDecoder.translate(error)
        }
    }

    var decodedSeconds: Double { stream.decodedSeconds }

    func close() {}
}
