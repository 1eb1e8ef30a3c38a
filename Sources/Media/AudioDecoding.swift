/// Decodes a whole audio track to mono float32 at the policy's rate, through FFmpeg or libsndfile: `AudioReader`
/// read to its end.
enum AudioDecoding {
    /// Also returns when the first sample plays, in clip seconds (after the codec drops its priming samples),
    /// so a video's sound can be lined up with its pictures.
    static func decode(_ input: FormatInput, stream: Int, sampleRate: Int,
                       limits: MediaLimits) throws(MediaError) -> (samples: [Float], startSeconds: Double) {
        let reader = try AudioReader(input, stream: stream, sampleRate: sampleRate, limits: limits)
        var samples = [Float]()
        while try reader.read(appendingTo: &samples) {}
        return (samples, reader.startSeconds ?? 0)
    }

    /// Where sound that starts playing at `startSeconds` belongs on a video's timeline, in samples: positive
    /// means that much silence goes before it, negative that much of its head is dropped (never beyond the
    /// length limit, whatever a timestamp claims).
    static func offsetSamples(startSeconds: Double, sampleRate: Int, limits: MediaLimits) -> Int {
        let limit = Int(limits.maxDurationSeconds * Double(sampleRate))
        return max(-limit, min(limit, Int((startSeconds * Double(sampleRate)).rounded())))
    }

    static func decode(_ file: SoundFile, sampleRate: Int, limits: MediaLimits) throws(MediaError) -> [Float] {
        let reader = try AudioReader(file, sampleRate: sampleRate, limits: limits)
        var samples = [Float]()
        samples.reserveCapacity(min(AudioReader.maxSamples(sampleRate: sampleRate, limits: limits),
                                    file.frames * sampleRate / max(file.sampleRate, 1) + 1024))
        while try reader.read(appendingTo: &samples) {}
        return samples
    }
}

/// One audio track decoded a piece at a time (a packet's frames, or a block of a WAV/FLAC), so a long recording
/// can be cut into windows without ever holding all of it.
///
/// A packet the codec rejects is skipped (players do the same); the first such error is reported only when
/// nothing at all could be decoded. Reading stops with `tooLong` as soon as the output passes the limit, so a
/// file that lies about its length costs no more than the limit.
final class AudioReader {
    private enum Backend {
        case ffmpeg(input: FormatInput, stream: Int, decoder: Decoder, packet: Packet, frame: Frame)
        case sndfile(SoundFile, block: CBuffer<Float>)
    }

    private let backend: Backend
    private let sampleRate: Int
    private let limits: MediaLimits
    private var resampler: Resampler?
    private var firstError: MediaError?
    /// Stream time base and clip origin, in seconds, to place the first frame on the clip's timeline.
    private var clock = (timeBase: 0.0, origin: 0.0)
    private var ended = false
    /// Where this call's piece starts in the caller's array (which may hold earlier pieces).
    private var pieceStart = 0
    /// Samples handed out so far.
    private(set) var produced = 0
    /// When the first sample plays, in clip seconds; nil until a frame with a timestamp was decoded.
    private(set) var startSeconds: Double?

    private static let blockFrames = 16384

    init(_ input: FormatInput, stream: Int, sampleRate: Int, limits: MediaLimits) throws(MediaError) {
        input.keepOnly(stream)
        backend = .ffmpeg(input: input, stream: stream,
                          decoder: try Decoder(parameters: input.codecParameters(of: stream), threads: 1, maxPixels: limits.maxPixels),
                          packet: try Packet(), frame: try Frame())
        clock = (input.timeBase(of: stream), input.startSeconds)
        self.sampleRate = sampleRate
        self.limits = limits
    }

    init(_ file: SoundFile, sampleRate: Int, limits: MediaLimits) throws(MediaError) {
        backend = .sndfile(file, block: try CBuffer<Float>(count: Self.blockFrames * file.channels))
        resampler = try Resampler(interleavedChannels: file.channels, rate: file.sampleRate, outputRate: sampleRate)
        startSeconds = 0
        self.sampleRate = sampleRate
        self.limits = limits
    }

    static func maxSamples(sampleRate: Int, limits: MediaLimits) -> Int {
        Int(limits.maxDurationSeconds * Double(sampleRate))
    }

    /// Appends the next piece of the track to `samples`. Returns false once the track has ended (the last call
    /// appends what the resampler still held); throws when the track holds no sound at all.
    func read(appendingTo samples: inout [Float]) throws(MediaError) -> Bool {
        guard !ended else { return false }
        let before = samples.count
        pieceStart = before
        switch backend {
        case .ffmpeg(let input, let stream, let decoder, let packet, let frame):
            while samples.count == before, !ended {
                let more: Bool
                do { more = try input.read(into: packet) } catch { note(error); more = false }
                if more {
                    if packet.streamIndex == stream {
                        do { try decoder.send(packet) } catch { note(error) }
                        try drain(decoder, frame: frame, into: &samples)
                    }
                    packet.unref()
                } else {
                    do { try decoder.send(nil) } catch { note(error) }
                    try drain(decoder, frame: frame, into: &samples)
                    try finish(into: &samples)
                }
            }
        case .sndfile(let file, let block):
            let n = try file.read(into: block, frames: Self.blockFrames)
            if n > 0 {
                try resampler!.convert(interleaved: block, frames: n, appendingTo: &samples)
            } else {
                try finish(into: &samples)
            }
        }
        produced += samples.count - before
        try Self.check(produced, sampleRate: sampleRate, limits: limits)
        return !ended
    }

    private func note(_ error: MediaError) {
        if firstError == nil { firstError = error }
    }

    /// Collects resampled frames from the decoder, rebuilding the resampler if the stream changes format midway.
    private func drain(_ decoder: Decoder, frame: Frame, into samples: inout [Float]) throws(MediaError) {
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
            try Self.check(produced + samples.count - pieceStart, sampleRate: sampleRate, limits: limits)
        }
    }

    /// Checked after every frame too: one packet's frames can run far past the limit (a lying header).
    private static func check(_ count: Int, sampleRate: Int, limits: MediaLimits) throws(MediaError) {
        guard count > maxSamples(sampleRate: sampleRate, limits: limits) else { return }
        throw MediaError.tooLong(seconds: Double(count) / Double(sampleRate), limit: limits.maxDurationSeconds)
    }

    private func finish(into samples: inout [Float]) throws(MediaError) {
        ended = true
        try resampler?.flush(appendingTo: &samples)
        guard produced + samples.count - pieceStart > 0 else {
            if case .sndfile = backend { throw MediaError.corrupt("the audio holds no samples") }
            throw firstError ?? MediaError.corrupt("the audio stream holds no decodable sound")
        }
    }
}
