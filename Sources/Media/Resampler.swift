import CFFmpeg

/// libswresample: any decoded audio to mono float32 at the model's rate.
///
/// Mono is the plain mean of all channels (set as an explicit matrix: swresample's own float downmix adds
/// stereo at 1/sqrt(2) each, which makes a centred source 3 dB louder than either channel). The rate change
/// uses swresample's windowed-sinc filter (32 taps at the default `filter_size`), not linear interpolation.
final class Resampler {
    private var context: OpaquePointer?
    let inputRate: Int
    let inputChannels: Int
    let inputFormat: Int32

    /// For decoded frames: takes the frame's own rate, channel layout and sample format.
    convenience init(matching frame: Frame, outputRate: Int) throws(MediaError) {
        try self.init(layout: &frame.pointer.pointee.ch_layout, rate: frame.sampleRate,
                      format: AVSampleFormat(frame.format), outputRate: outputRate)
    }

    /// For libsndfile's interleaved float32.
    convenience init(interleavedChannels channels: Int, rate: Int, outputRate: Int) throws(MediaError) {
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, Int32(channels))
        defer { av_channel_layout_uninit(&layout) }
        try self.init(layout: &layout, rate: rate, format: AV_SAMPLE_FMT_FLT, outputRate: outputRate)
    }

    private init(layout: UnsafeMutablePointer<AVChannelLayout>, rate: Int, format: AVSampleFormat, outputRate: Int) throws(MediaError) {
        inputRate = rate
        inputChannels = Int(layout.pointee.nb_channels)
        inputFormat = format.rawValue
        guard rate > 0, inputChannels > 0 else { throw MediaError.corrupt("the audio stream has no sample rate or channels") }
        var mono = AVChannelLayout()
        av_channel_layout_default(&mono, 1)
        try check(swr_alloc_set_opts2(&context, &mono, AV_SAMPLE_FMT_FLT, Int32(outputRate),
                                      layout, format, Int32(rate), 0, nil))
        let mean = [Double](repeating: 1 / Double(inputChannels), count: inputChannels)
        try check(swr_set_matrix(context, mean, Int32(inputChannels)))
        try check(swr_init(context))
    }

    deinit {
        swr_free(&context)
    }

    func accepts(_ frame: Frame) -> Bool {
        frame.sampleRate == inputRate && frame.channels == inputChannels && frame.format == inputFormat
    }

    /// Appends the resampled samples of one decoded frame.
    func convert(_ frame: Frame, appendingTo output: inout [Float]) throws(MediaError) {
        try run(input: frame.extendedData, count: frame.sampleCount, appendingTo: &output)
    }

    /// Appends the resampled samples of `frames` interleaved frames.
    func convert(interleaved samples: [Float], frames: Int, appendingTo output: inout [Float]) throws(MediaError) {
        precondition(samples.count >= frames * inputChannels, "interleaved buffer shorter than its frame count")
        var failure: MediaError?
        samples.withUnsafeBytes { raw in
            var plane: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
            do throws(MediaError) { try run(input: &plane, count: frames, appendingTo: &output) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Appends what the filter still holds once the input has ended.
    func flush(appendingTo output: inout [Float]) throws(MediaError) {
        try run(input: nil, count: 0, appendingTo: &output)
    }

    private func run(input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int,
                     appendingTo output: inout [Float]) throws(MediaError) {
        let capacity = Int(try check(swr_get_out_samples(context, Int32(count))))
        guard capacity > 0 else { return }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: capacity))
        let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var plane: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(buffer.baseAddress! + start)
                .assumingMemoryBound(to: UInt8.self)
            return swr_convert(context, &plane, Int32(capacity), input, Int32(count))
        }
        output.removeLast(capacity - Int(max(0, written)))
        try check(written)
    }
}
