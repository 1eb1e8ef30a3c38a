/// Why an upload could not be turned into model input. Each case maps to one HTTP status in the server
/// (empty/unsupported/no stream/corrupt/truncated -> 4xx the client can fix, tooLong/tooLarge -> 413).
/// Messages are written for the person who sent the file.
public enum MediaError: Error, Equatable, CustomStringConvertible, Sendable, Codable {
    case empty
    case unsupportedFormat(String)
    case noUsableStream(String)
    case corrupt(String)
    case truncated(String)
    case tooLong(seconds: Double, limit: Double)
    case tooLarge(bytes: Int, limit: Int)
    case frameTooLarge(width: Int, height: Int, limitPixels: Int)
    case tooManyStreams(Int, limit: Int)
    case tooMuchVideo(windows: Int, crops: Int, limit: Int)

    public var description: String {
        switch self {
        case .empty:
            return "the upload is empty: send the audio or video file as the request body"
        case .unsupportedFormat(let detail):
            return "unsupported format (\(detail)); send WAV, FLAC, MP3, OGG, M4A, MP4, MOV, MKV, WebM, AVI or MPEG-TS"
        case .noUsableStream(let detail):
            return "no usable stream: \(detail)"
        case .corrupt(let detail):
            return "the file is corrupt: \(detail)"
        case .truncated(let detail):
            return "the file is truncated: \(detail); was the upload cut short?"
        case .tooLong(let seconds, let limit):
            return "the clip lasts \(Self.format(seconds)) s, longer than the \(Self.format(limit)) s limit; trim it"
        case .tooLarge(let bytes, let limit):
            return "the upload has \(bytes) bytes, more than the \(limit) byte limit"
        case .frameTooLarge(let width, let height, let limitPixels):
            return "video frames are \(width)x\(height), more than the \(limitPixels) pixel limit; scale the video down"
        case .tooManyStreams(let count, let limit):
            return "the file has \(count) streams, more than the \(limit) allowed"
        case .tooMuchVideo(let windows, let crops, let limit):
            return "the video needs \(windows) windows x \(crops) crops = \(windows * crops) frame sets, more than the \(limit) "
                + "one request may decode; trim the clip or ask for 1 crop"
        }
    }

    /// A stream that decodes to much less than its header promised was cut short (an interrupted upload);
    /// the margin absorbs codec delay and rounding of container durations.
    static func truncation(decoded: Double, declared: Double?) -> MediaError? {
        guard let declared, decoded < declared * 0.9 - 0.1 else { return nil }
        return .truncated("it holds \(format(decoded)) s of the \(format(declared)) s its header declares")
    }

    private static func format(_ seconds: Double) -> String {
        "\((seconds * 10).rounded() / 10)"
    }
}
