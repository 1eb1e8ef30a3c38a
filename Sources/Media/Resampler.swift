import CFFmpeg

/// libswresample: any decoded audio to mono float32 at the model's rate.
///
/// Mono is the plain mean of all channels (set as an explicit matrix: swresample's own float downmix adds
/// stereo at 1/sqrt(2) each, which makes a centred source 3 dB louder than either channel). The rate change
/// uses swresample's windowed-sinc filter (32 taps at the default `filter_size`), not linear interpolation.
final class Resampler {
    private var context: OpaquePointer?
    /// swr_convert's destination, reused across calls: a padded C buffer, never the growing Swift output array.
    private var scratch: CBuffer<Float>?
    /// Real audio lives between telephone 1 kHz and studio 384 kHz. The bound matters: swresample sizes its
    /// filter bank by the rate ratio, and a header claiming 2 GHz (found by the fuzzer) asks for 2 GB.
    static let acceptedRates = 1000...384_000
    static let maxChannels = 64

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
        guard Self.acceptedRates.contains(rate), (1...Self.maxChannels).contains(inputChannels) else {
            throw MediaError.unsupportedFormat("audio at \(rate) Hz with \(inputChannels) channels")
        }
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
    func convert(interleaved samples: CBuffer<Float>, frames: Int, appendingTo output: inout [Float]) throws(MediaError) {
        precondition(samples.count >= frames * inputChannels, "interleaved buffer shorter than its frame count")
        var plane: UnsafePointer<UInt8>? = UnsafeRawPointer(samples.pointer).assumingMemoryBound(to: UInt8.self)
        try run(input: &plane, count: frames, appendingTo: &output)
    }

    /// Appends what the filter still holds once the input has ended.
    func flush(appendingTo output: inout [Float]) throws(MediaError) {
        try run(input: nil, count: 0, appendingTo: &output)
    }

    private func run(input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int,
                     appendingTo output: inout [Float]) throws(MediaError) {
        let capacity = Int(try check(swr_get_out_samples(context, Int32(count))))
        guard capacity > 0 else { return }
        if (scratch?.count ?? 0) < capacity { scratch = try CBuffer(count: capacity) }
        guard let scratch else { return }
        var plane: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(scratch.pointer).assumingMemoryBound(to: UInt8.self)
        let written = try check(swr_convert(context, &plane, Int32(capacity), input, Int32(count)))
        scratch.append(first: Int(written), to: &output)
    }
}
