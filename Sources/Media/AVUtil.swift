import CFFmpeg

/// libavutil: the frame type every decoder fills, and the library-wide log level.
///
/// Owns one `AVFrame`; a decoder receives into it and the next receive replaces its contents, so a frame that
/// must outlive the next receive is swapped out rather than copied.
final class Frame {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws(MediaError) {
        guard let frame = av_frame_alloc() else { throw MediaError.corrupt("out of memory allocating a frame") }
        pointer = frame
    }

    deinit {
        var frame: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&frame)
    }

    var width: Int { Int(pointer.pointee.width) }
    var height: Int { Int(pointer.pointee.height) }
    var sampleCount: Int { Int(pointer.pointee.nb_samples) }
    var sampleRate: Int { Int(pointer.pointee.sample_rate) }
    var channels: Int { Int(pointer.pointee.ch_layout.nb_channels) }
    var format: Int32 { pointer.pointee.format }

    /// The decoder's best guess at the presentation time, in stream time-base units; nil when it has none.
    var timestamp: Int64? {
        let value = pointer.pointee.best_effort_timestamp
        return value == avmae_nopts_value() ? nil : value
    }

    var data: UnsafePointer<UnsafePointer<UInt8>?> { avmae_frame_data(pointer) }
    var lineSizes: UnsafePointer<Int32> { avmae_frame_linesize(pointer) }
    /// swr_convert reads planar audio through `extended_data`, which covers layouts with more than 8 channels.
    var extendedData: UnsafeMutablePointer<UnsafePointer<UInt8>?>? {
        UnsafeMutableRawPointer(pointer.pointee.extended_data)?.assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
    }

    func unref() { av_frame_unref(pointer) }
}

/// FFmpeg logs through one process-wide callback. Media reports every failure as a typed error instead, so
/// library chatter about broken uploads would only flood the daemon's stderr: silence it once, on first use.
enum FFmpegLogging {
    static let silenced: Void = av_log_set_level(AV_LOG_QUIET)
}
