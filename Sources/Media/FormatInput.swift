import CFFmpeg

/// libavformat: one demuxer over the upload bytes, read through a custom AVIOContext (no temporary files).
///
/// Not thread-safe; each decode opens its own. Only the containers people upload are allowed, so a random
/// body is refused as an unknown format instead of being parsed by one of FFmpeg's hundreds of demuxers.
final class FormatInput {
    /// Demuxer names as FFmpeg spells them (each matches one element of a demuxer's comma-separated name).
    static let allowedFormats = "mov,mp4,m4a,3gp,matroska,webm,avi,mpegts,mpeg,wav,w64,flac,mp3,ogg,aac,aiff,caf"

    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?
    private let cursor: ByteCursor

    /// Refuses too many streams before probing them, and `maxPixels` also bounds the decoders FFmpeg opens while
    /// probing, which would otherwise allocate whatever frame size a header declares.
    convenience init(bytes: [UInt8], limits: MediaLimits) throws(MediaError) {
        try self.init(source: .bytes(bytes), limits: limits)
    }

    init(source: MediaSource, limits: MediaLimits) throws(MediaError) {
        _ = FFmpegLogging.silenced
        cursor = ByteCursor(source)
        let bufferSize: Int32 = 1 << 16
        guard let buffer = av_malloc(Int(bufferSize))?.assumingMemoryBound(to: UInt8.self),
              let io = avio_alloc_context(buffer, bufferSize, 0, Unmanaged.passUnretained(cursor).toOpaque(),
                                          readCallback, nil, seekCallback)
        else { throw MediaError.corrupt("out of memory opening the upload") }
        self.io = io
        io.pointee.seekable = AVIO_SEEKABLE_NORMAL
        let format = try Self.probe(io)
        guard let context = avformat_alloc_context() else { throw MediaError.corrupt("out of memory opening the upload") }
        context.pointee.pb = io
        context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        var opened: UnsafeMutablePointer<AVFormatContext>? = context
        do {
            // On failure avformat_open_input frees the context and sets it to nil.
            try check(avformat_open_input(&opened, nil, format, nil))
        } catch .corrupt(let detail) where cursor.reachedEnd {
            throw MediaError.truncated("the data ends inside the \(String(cString: format.pointee.name)) header (\(detail))")
        }
        self.context = opened
        let streams = Int(opened!.pointee.nb_streams)
        guard streams <= limits.maxStreams else { throw MediaError.tooManyStreams(streams, limit: limits.maxStreams) }
        // Checked before probing: a decoder that refuses a frame size zeroes it, hiding what the header declared.
        for i in 0..<streams {
            let size = videoSize(of: i)
            guard size.width * size.height <= limits.maxPixels else {
                throw MediaError.frameTooLarge(width: size.width, height: size.height, limitPixels: limits.maxPixels)
            }
        }
        var options = [OpaquePointer?](repeating: nil, count: Int(opened!.pointee.nb_streams))
        defer { for i in options.indices { av_dict_free(&options[i]) } }
        for i in options.indices { try check(av_dict_set(&options[i], "max_pixels", "\(limits.maxPixels)", 0)) }
        try check(avformat_find_stream_info(opened, &options))
    }

    /// Names the container from its first bytes, and refuses it unless it is one people upload.
    private static func probe(_ io: UnsafeMutablePointer<AVIOContext>) throws(MediaError) -> UnsafePointer<AVInputFormat> {
        var format: UnsafePointer<AVInputFormat>?
        do {
            try check(av_probe_input_buffer2(io, &format, nil, nil, 0, 0))
        } catch {
            throw MediaError.unsupportedFormat("not a recognised audio or video file")
        }
        guard let format, av_match_list(format.pointee.name, allowedFormats, CChar(UInt8(ascii: ","))) > 0 else {
            let name = format.map { String(cString: $0.pointee.name) } ?? "unknown"
            throw MediaError.unsupportedFormat("\(name) files are not accepted")
        }
        return format
    }

    deinit {
        avformat_close_input(&context)
        // With AVFMT_FLAG_CUSTOM_IO the AVIOContext and its (possibly reallocated) buffer are ours to free.
        if io != nil { av_freep(&io!.pointee.buffer) }
        avio_context_free(&io)
    }

    private var format: AVFormatContext { context!.pointee }

    var containerName: String { String(cString: format.iformat.pointee.name) }
    var streamCount: Int { Int(format.nb_streams) }

    /// The container's length in seconds, if it states one (possibly estimated from the bitrate).
    var declaredDuration: Double? {
        guard format.duration != avmae_nopts_value(), format.duration > 0 else { return nil }
        return Double(format.duration) / Double(AV_TIME_BASE)
    }

    /// The presentation time the clip starts at, in seconds; frame and sample times are relative to it.
    var startSeconds: Double {
        format.start_time == avmae_nopts_value() ? 0 : Double(format.start_time) / Double(AV_TIME_BASE)
    }

    /// A stream's own length when the container states it (else, if `orContainer`, the container's), in seconds;
    /// nil when only a bitrate estimate exists (MP3 without a Xing header), too rough to call a file truncated.
    func trustedDuration(of index: Int, orContainer: Bool = true) -> Double? {
        guard format.duration_estimation_method != AVFMT_DURATION_FROM_BITRATE else { return nil }
        let s = stream(index).pointee
        if s.duration != avmae_nopts_value(), s.duration > 0 { return Double(s.duration) * av_q2d(s.time_base) }
        return orContainer ? declaredDuration : nil
    }

    /// The audio and video streams FFmpeg would pick (it prefers streams with a decoder and the most frames).
    var bestAudioStream: Int? { bestStream(AVMEDIA_TYPE_AUDIO) }
    /// Cover art in an MP3, M4A or FLAC is a one-picture "video" stream; it is not video to watch.
    var bestVideoStream: Int? {
        bestStream(AVMEDIA_TYPE_VIDEO).flatMap { stream($0).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0 ? $0 : nil }
    }

    private func bestStream(_ type: AVMediaType) -> Int? {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        return index >= 0 ? Int(index) : nil
    }

    /// Stored picture size as the container and the first decoded frames state it.
    func videoSize(of index: Int) -> (width: Int, height: Int) {
        let p = stream(index).pointee.codecpar.pointee
        return (Int(p.width), Int(p.height))
    }

    func audioFormat(of index: Int) -> (sampleRate: Int, channels: Int) {
        let p = stream(index).pointee.codecpar.pointee
        return (Int(p.sample_rate), Int(p.ch_layout.nb_channels))
    }

    /// The end of a stream's last packet in clip seconds, found by demuxing without decoding; for files that do
    /// not state their length (WebM from browsers' MediaRecorder). Leaves the input at its end.
    func scanEnd(of index: Int) throws(MediaError) -> Double? {
        keepOnly(index)
        let packet = try Packet()
        let base = timeBase(of: index)
        var end: Double?
        while try read(into: packet) {
            if packet.streamIndex == index, let pts = packet.timestamp {
                let packetEnd = Double(pts + packet.duration) * base - startSeconds
                end = max(end ?? packetEnd, packetEnd)
            }
            packet.unref()
        }
        return end
    }

    private func stream(_ index: Int) -> UnsafeMutablePointer<AVStream> {
        format.streams[index]!
    }

    func codecParameters(of index: Int) -> UnsafePointer<AVCodecParameters> {
        UnsafePointer(stream(index).pointee.codecpar)
    }

    func codecName(of index: Int) -> String {
        String(cString: avcodec_get_name(stream(index).pointee.codecpar.pointee.codec_id))
    }

    /// Seconds per timestamp unit of a stream.
    func timeBase(of index: Int) -> Double {
        av_q2d(stream(index).pointee.time_base)
    }

    func frameRate(of index: Int) -> Double {
        let s = stream(index).pointee
        let rate = s.avg_frame_rate.num > 0 && s.avg_frame_rate.den > 0 ? s.avg_frame_rate : s.r_frame_rate
        return rate.den > 0 ? av_q2d(rate) : 0
    }

    /// Degrees counter-clockwise the display matrix turns the stored picture, rounded to a quarter turn
    /// (phones store landscape sensor frames and mark portrait clips this way).
    func rotation(of index: Int) -> Int {
        guard let matrix = av_stream_get_side_data(stream(index), AV_PKT_DATA_DISPLAYMATRIX, nil) else { return 0 }
        let degrees = av_display_rotation_get(UnsafeRawPointer(matrix).assumingMemoryBound(to: Int32.self))
        guard degrees.isFinite else { return 0 }
        let quarterTurns = Int((degrees / 90).rounded())
        return ((quarterTurns % 4) + 4) % 4 * 90
    }

    /// Tells the demuxer to drop every other stream's packets before they reach us.
    func keepOnly(_ index: Int) {
        for i in 0..<streamCount {
            format.streams[i]!.pointee.discard = i == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL
        }
    }

    /// Reads the next packet; false at the end of the data.
    func read(into packet: Packet) throws(MediaError) -> Bool {
        let code = av_read_frame(context, packet.pointer)
        if code == avmae_averror_eof() { return false }
        try check(code)
        return true
    }

    /// Jumps to the last keyframe at or before `seconds` (clip time), but only forward from `notBefore`, so a
    /// seek never re-decodes what was already decoded. False when the container cannot seek there.
    func seek(stream index: Int, to seconds: Double, notBefore: Double) -> Bool {
        let base = timeBase(of: index)
        let target = Int64(((seconds + startSeconds) / base).rounded(.down))
        let lower = Int64(((notBefore + startSeconds) / base).rounded(.up))
        guard lower <= target else { return false }
        return (try? check(avformat_seek_file(context, Int32(index), lower, target, target, 0))) != nil
    }
}

private let readCallback: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
    opaque, buffer, size in
    let cursor = Unmanaged<ByteCursor>.fromOpaque(opaque!).takeUnretainedValue()
    let n = cursor.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: Int(size)))
    return n > 0 ? Int32(n) : avmae_averror_eof()
}

private let seekCallback: @convention(c) (UnsafeMutableRawPointer?, Int64, Int32) -> Int64 = { opaque, offset, whence in
    let cursor = Unmanaged<ByteCursor>.fromOpaque(opaque!).takeUnretainedValue()
    if whence & AVSEEK_SIZE != 0 { return Int64(cursor.count) }
    return cursor.seek(offset: offset, whence: whence & ~AVSEEK_FORCE) ?? Int64(avmae_averror_einval())
}
