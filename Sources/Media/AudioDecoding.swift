/// Decodes a whole audio track to mono float32 at the policy's rate, through FFmpeg or libsndfile.
///
/// A packet the codec rejects is skipped (players do the same); the first such error is reported only when
/// nothing at all could be decoded. Decoding stops with `tooLong` as soon as the output passes the limit, so a
/// file that lies about its length costs no more than the limit.
enum AudioDecoding {
    /// Also returns when the first sample plays, in clip seconds (after the codec drops its priming samples),
    /// so a video's sound can be lined up with its pictures.
    static func decode(_ input: FormatInput, stream: Int, sampleRate: Int,
                       limits: MediaLimits) throws(MediaError) -> (samples: [Float], startSeconds: Double) {
        input.keepOnly(stream)
        let decoder = try Decoder(parameters: input.codecParameters(of: stream), threads: 1, maxPixels: limits.maxPixels)
        let packet = try Packet()
        var sink = try Sink(sampleRate: sampleRate, limits: limits)
        sink.clock = (input.timeBase(of: stream), input.startSeconds)
        while true {
            let more: Bool
            do { more = try input.read(into: packet) } catch { sink.note(error); break }
            guard more else { break }
            if packet.streamIndex == stream {
                do { try decoder.send(packet) } catch { sink.note(error) }
                try sink.drain(decoder)
            }
            packet.unref()
        }
        do { try decoder.send(nil) } catch { sink.note(error) }
        try sink.drain(decoder)
        return (try sink.finish(), sink.startSeconds ?? 0)
    }

    static func decode(_ file: SoundFile, sampleRate: Int, limits: MediaLimits) throws(MediaError) -> [Float] {
        let resampler = try Resampler(interleavedChannels: file.channels, rate: file.sampleRate, outputRate: sampleRate)
        let maxSamples = Sink.maxSamples(sampleRate: sampleRate, limits: limits)
        var samples = [Float]()
        samples.reserveCapacity(min(maxSamples, file.frames * sampleRate / max(file.sampleRate, 1) + 1024))
        let blockFrames = 16384
        let block = try CBuffer<Float>(count: blockFrames * file.channels)
        while true {
            let n = try file.read(into: block, frames: blockFrames)
            guard n > 0 else { break }
            try resampler.convert(interleaved: block, frames: n, appendingTo: &samples)
            try Sink.checkLength(samples.count, sampleRate: sampleRate, limits: limits)
        }
        try resampler.flush(appendingTo: &samples)
        guard !samples.isEmpty else { throw MediaError.corrupt("the audio holds no samples") }
        return samples
    }

    /// Collects resampled frames from a decoder, rebuilding the resampler if the stream changes format midway.
    private struct Sink {
        let sampleRate: Int
        let limits: MediaLimits
        let frame: Frame
        var resampler: Resampler?
        var samples: [Float] = []
        var firstError: MediaError?
        /// Stream time base and clip origin, in seconds, to place the first frame on the clip's timeline.
        var clock = (timeBase: 0.0, origin: 0.0)
        var startSeconds: Double?

        init(sampleRate: Int, limits: MediaLimits) throws(MediaError) {
            self.sampleRate = sampleRate
            self.limits = limits
            frame = try Frame()
        }

        static func maxSamples(sampleRate: Int, limits: MediaLimits) -> Int {
            Int(limits.maxDurationSeconds * Double(sampleRate))
        }

        static func checkLength(_ count: Int, sampleRate: Int, limits: MediaLimits) throws(MediaError) {
            guard count > maxSamples(sampleRate: sampleRate, limits: limits) else { return }
            throw MediaError.tooLong(seconds: Double(count) / Double(sampleRate), limit: limits.maxDurationSeconds)
        }

        mutating func note(_ error: MediaError) {
            if firstError == nil { firstError = error }
        }

        mutating func drain(_ decoder: Decoder) throws(MediaError) {
            while true {
                let got: Bool
                do { got = try decoder.receive(into: frame) } catch { note(error); return }
                guard got else { return }
                if startSeconds == nil, let timestamp = frame.timestamp {
                    startSeconds = Double(timestamp) * clock.timeBase - clock.origin
                }
                if resampler == nil || !resampler!.accepts(frame) {
                    try resampler?.flush(appendingTo: &samples)
                    resampler = try Resampler(matching: frame, outputRate: sampleRate)
                }
                try resampler!.convert(frame, appendingTo: &samples)
                frame.unref()
                try Self.checkLength(samples.count, sampleRate: sampleRate, limits: limits)
            }
        }

        mutating func finish() throws(MediaError) -> [Float] {
            try resampler?.flush(appendingTo: &samples)
            guard !samples.isEmpty else {
                throw firstError ?? MediaError.corrupt("the audio stream holds no decodable sound")
            }
            return samples
        }
    }
}
