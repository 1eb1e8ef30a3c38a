import CFFmpeg

/// libavcodec: one compressed packet, reused for every read.
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(MediaError) {
        guard let packet = av_packet_alloc() else { throw MediaError.corrupt("out of memory allocating a packet") }
        pointer = packet
    }

    deinit {
        var packet: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&packet)
    }

    var streamIndex: Int { Int(pointer.pointee.stream_index) }
    /// Presentation timestamp in stream units, nil when the container gives none.
    var timestamp: Int64? { pointer.pointee.pts == avmae_nopts_value() ? nil : pointer.pointee.pts }

    func unref() { av_packet_unref(pointer) }
}

/// libavcodec: a decoder for one stream, fed packets and drained of frames (the send/receive API).
final class Decoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?

    /// `threads` 0 lets FFmpeg pick; `maxPixels` makes the codec itself refuse oversized frames.
    init(parameters: UnsafePointer<AVCodecParameters>, threads: Int, maxPixels: Int) throws(MediaError) {
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
            throw MediaError.unsupportedFormat("no decoder for the \(name) codec")
        }
        guard let context = avcodec_alloc_context3(codec) else { throw MediaError.corrupt("out of memory opening a decoder") }
        self.context = context
        try check(avcodec_parameters_to_context(context, parameters))
        context.pointee.thread_count = Int32(threads)
        context.pointee.max_pixels = Int64(maxPixels)
        try check(avcodec_open2(context, codec, nil))
    }

    deinit {
        avcodec_free_context(&context)
    }

    /// Whether the decoder may drop frames no other frame refers to (B-frames, usually). Read by FFmpeg per
    /// packet, also by its frame threads, so it can change between packets.
    var skipsNonReferenceFrames: Bool {
        get { context!.pointee.skip_frame == AVDISCARD_NONREF }
        set { context!.pointee.skip_frame = newValue ? AVDISCARD_NONREF : AVDISCARD_DEFAULT }
    }

    /// Queues one packet, or the end of the stream when `packet` is nil. The caller drains with `receive`
    /// after every send, so the decoder never reports that its output is full.
    func send(_ packet: Packet?) throws(MediaError) {
        try check(avcodec_send_packet(context, packet?.pointer))
    }

    /// The next decoded frame, or false when the decoder needs another packet or has finished.
    func receive(into frame: Frame) throws(MediaError) -> Bool {
        let code = avcodec_receive_frame(context, frame.pointer)
        if code == avmae_averror_eagain() || code == avmae_averror_eof() { return false }
        try check(code)
        return true
    }

    /// Drops buffered frames after a seek.
    func flush() {
        avcodec_flush_buffers(context)
    }
}
