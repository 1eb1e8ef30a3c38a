import CFFmpeg
import CSndFile

/// The two C libraries whose return codes reach Swift; they report errors differently.
enum CLibrary {
    /// Negative AVERROR codes, zero or positive on success.
    case ffmpeg
    /// `sf_error` numbers, zero on success.
    case sndfile
}

/// Every FFmpeg and libsndfile return code goes through here, so each failure becomes the same typed error
/// wherever it happens, and names the C call site that produced it (the way swift-nio's `syscall` does).
@discardableResult
func check(_ code: Int32, _ library: CLibrary = .ffmpeg, function: StaticString = #function) throws(MediaError) -> Int32 {
    switch library {
    case .ffmpeg:
        guard code < 0 else { return code }
        throw ffmpegError(code, at: "\(function)")
    case .sndfile:
        guard code != 0 else { return code }
        throw sndfileError(code, at: "\(function)")
    }
}

private func ffmpegError(_ code: Int32, at site: String) -> MediaError {
    var text = [CChar](repeating: 0, count: 128)
    av_strerror(code, &text, text.count)
    let message = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    switch code {
    case avmae_averror_eof():
        return .truncated("the data ends early (\(site))")
    case avmae_averror_decoder_not_found():
        return .unsupportedFormat("no decoder for this codec (\(site))")
    case avmae_averror_demuxer_not_found(), avmae_averror_patchwelcome():
        return .unsupportedFormat("\(message) (\(site))")
    case avmae_averror_stream_not_found():
        return .noUsableStream("\(message) (\(site))")
    default:
        return .corrupt("\(message) (\(site))")
    }
}

private func sndfileError(_ code: Int32, at site: String) -> MediaError {
    let message = sf_error_number(code).map { String(cString: $0) } ?? "error \(code)"
    switch Int(code) {
    case Int(SF_ERR_UNRECOGNISED_FORMAT), Int(SF_ERR_UNSUPPORTED_ENCODING):
        return .unsupportedFormat("\(message) (\(site))")
    default:
        return .corrupt("\(message) (\(site))")
    }
}
