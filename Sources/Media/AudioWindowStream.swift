/// A recording's sound cut into model windows as it decodes, one window per `next()`: the streaming counterpart
/// of `MediaDecoder.decode` for audio. It holds one window plus one decoded piece, whatever the recording's
/// length, so an hour costs no more memory than ten seconds.
///
/// Windows are exactly those `Windowing.starts` gives for the whole track (hop apart, the last one pulled back to
/// end at the track's end, a track shorter than a window looped), with the same samples, so a streamed answer
/// and a whole one agree window for window. Not thread-safe: one stream is read by one thread at a time.
public final class AudioWindowStream {
    public private(set) var info: MediaInfo
    private let reader: AudioReader
    private let policy: ClipPolicy
    /// The track's trustworthy declared length, checked against what decoded once it has ended.
    private let declaredSeconds: Double?
    /// Decoded samples from `bufferStart` on. // (total - bufferStart)
    private var buffer: [Float] = []
    private var bufferStart = 0
    private var ended = false
    private var nextIndex = 0
    private var nextStart = 0
    /// Where the last window handed out ends; the track's end needs one more window when it lies beyond.
    private var lastEnd = 0
    /// Kept alive for the reader, which reads through it.
    private let input: FormatInput

    /// Opens the source and its best audio track; refuses it as the whole-clip decoder would (format, streams,
    /// declared length over `limits.maxDurationSeconds`, no sound).
    public init(source: MediaSource, policy: ClipPolicy, limits: MediaLimits,
                preferSndfile: Bool = true) throws(MediaError) {
        guard source.count > 0 else { throw MediaError.empty }
        guard source.count <= limits.maxBytes else { throw MediaError.tooLarge(bytes: source.count, limit: limits.maxBytes) }
        let probe = try FormatInput(source: source, limits: limits)
        if let declared = probe.declaredDuration, declared > limits.maxDurationSeconds {
            throw MediaError.tooLong(seconds: declared, limit: limits.maxDurationSeconds)
        }
        guard let stream = probe.bestAudioStream else {
            throw MediaError.noUsableStream("the file has no audio track, and a stream is decoded for its sound")
        }
        let format = probe.audioFormat(of: stream)
        info = MediaInfo(container: probe.containerName, durationSeconds: probe.declaredDuration ?? 0)
        info.audio = .init(codec: probe.codecName(of: stream), sampleRate: format.sampleRate, channels: format.channels)
        declaredSeconds = probe.trustedDuration(of: stream)
        input = probe
        if preferSndfile, probe.bestVideoStream == nil, SoundFile.handles(source), let file = try? SoundFile(source: source) {
            reader = try AudioReader(file, sampleRate: policy.sampleRate, limits: limits)
        } else {
            reader = try AudioReader(probe, stream: stream, sampleRate: policy.sampleRate, limits: limits)
        }
        self.policy = policy
    }

    /// Seconds of sound decoded so far; the track's length once `next()` has returned nil.
    public var decodedSeconds: Double { Double(reader.produced) / Double(policy.sampleRate) }

    /// The next window, or nil after the last. Throws what the decoder hit (a track that holds no sound, goes past
    /// the length limit, or ends well before its header says).
    public func next() throws(MediaError) -> ClipWindow? {
        let window = policy.windowSamples
        while true {
            let total = bufferStart + buffer.count
            if total >= nextStart + window {
                defer { nextStart += policy.hopSamples }
                return take(start: nextStart)
            }
            if ended { return try tail(total: total) }
            ended = !(try reader.read(appendingTo: &buffer))
            trim()
        }
    }

    /// After the last full-grid window: a track shorter than one window gives one looped window; otherwise a
    /// track whose end lies past the last window gets a last one ending exactly there.
    private func tail(total: Int) throws(MediaError) -> ClipWindow? {
        let window = policy.windowSamples
        if nextIndex == 0 {
            info.durationSeconds = decodedSeconds
            try checkComplete()
            return emit(start: 0, waveform: Windowing.waveform(buffer, start: 0, length: window))
        }
        guard lastEnd < total else {
            info.durationSeconds = decodedSeconds
            try checkComplete()
            return nil
        }
        return take(start: total - window)
    }

    private func take(start: Int) -> ClipWindow {
        let offset = start - bufferStart
        return emit(start: start, waveform: Array(buffer[offset..<offset + policy.windowSamples]))
    }

    private func emit(start: Int, waveform: [Float]) -> ClipWindow {
        defer { nextIndex += 1 }
        lastEnd = start + policy.windowSamples
        return ClipWindow(index: nextIndex, startSeconds: Double(start) / Double(policy.sampleRate), waveform: waveform,
                          videoCrops: [], frameTimes: [])
    }

    /// Drops samples no window can need any more: those before the next start and before the last window's
    /// worth, which the pulled-back final window may reach into.
    private func trim() {
        let keepFrom = min(nextStart, bufferStart + buffer.count - policy.windowSamples)
        let drop = keepFrom - bufferStart
        guard drop > 0 else { return }
        buffer.removeFirst(drop)
        bufferStart += drop
    }

    private func checkComplete() throws(MediaError) {
        if let error = MediaError.truncation(decoded: decodedSeconds, declared: declaredSeconds) { throw error }
    }
}
