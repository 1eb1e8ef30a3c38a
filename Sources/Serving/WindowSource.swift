import AVMAE
import Media

/// A recording decoded window by window for streaming, holding only a few windows at a time.
public protocol WindowSource: AnyObject {
    /// Of the modalities asked for when it was opened, those the recording has.
    var available: Set<Modality> { get }
    /// The next window, or nil after the last; throws `ServingError`.
    func next() throws -> DecodedWindow?
    /// Seconds of the recording decoded so far: its length once `next()` has returned nil.
    var decodedSeconds: Double { get }
    /// The reader stops early (client gone, failure): give back what the decoding holds.
    func close()
}

extension ClipDecoding {
    /// Decoders that cannot stream say so; the service answers such a request with this error.
    public func openStream(_ source: MediaSource, want: Set<Modality>, crops: CropCount) throws -> WindowSource {
        throw ServingError.unsupportedTask("this server's decoder cannot stream recordings")
    }
}

/// In-process streaming: `Media.ClipWindowStream`, its errors translated as the whole-clip decoder's are.
final class ClipWindowSource: WindowSource {
    private let stream: ClipWindowStream

    init(_ stream: ClipWindowStream) {
        self.stream = stream
    }

    var available: Set<Modality> { Modality.available(audio: stream.hasAudio, video: stream.hasVideo) }

    func next() throws -> DecodedWindow? {
        do {
            return try stream.next().map {
                DecodedWindow(index: $0.index, startSeconds: $0.startSeconds, waveform: $0.waveform,
                              videoCrops: $0.videoCrops, frameTimes: $0.frameTimes)
            }
        } catch {
            throw MediaClipDecoder.translate(error)
        }
    }

    var decodedSeconds: Double { stream.decodedSeconds }

    func close() {}
}
