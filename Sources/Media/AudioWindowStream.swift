/// A recording's sound cut into model windows as it decodes, one window per `next()`: the sound half of
/// `ClipWindowStream`. It holds one window plus one decoded piece, whatever the recording's length, so an hour
/// costs no more memory than ten seconds.
///
/// Windows are exactly those `Windowing.starts` gives for the whole track (hop apart, the last one pulled back to
/// end at the track's end, a track shorter than a window looped), with the same samples, so a streamed answer
/// and a whole one agree window for window. Not thread-safe: one stream is read by one thread at a time.
final class AudioWindowStream {
    struct Window {
        /// In samples on the clip's timeline.
        var start: Int
        var waveform: [Float]
    }

    private let reader: AudioReader
    private let policy: ClipPolicy
    private let limits: MediaLimits
    /// The track's trustworthy declared length, checked against what decoded once it has ended.
    private let declaredSeconds: Double?
    /// Samples of the clip's timeline from `bufferStart` on. // (total - bufferStart)
    private var buffer: [Float] = []
    private var bufferStart = 0
    private var ended = false
    private var emitted = 0
    private var nextStart = 0
    /// Where the last window handed out ends; the track's end needs one more window when it lies beyond.
    private var lastEnd = 0
    /// A video's sound is moved onto the pictures' timeline, as `MediaDecoder` does, once its first timestamp
    /// is known; sound alone starts at 0 by definition (`none` from the start). No window leaves before then.
    private var alignment: Alignment
    /// Kept alive for the reader, which reads through it.
    private let input: FormatInput

    private enum Alignment {
        case none
        case pending
        case dropping(Int)
    }

    /// Reads track `stream` of `probe`, or the same bytes through libsndfile when it can and there is no video.
    /// `alignToPictures`: place the sound on the video's timeline (silence before sound that starts late, the
    /// head of sound that starts early dropped).
    init(source: MediaSource, probe: FormatInput, stream: Int, policy: ClipPolicy, limits: MediaLimits,
         preferSndfile: Bool, alignToPictures: Bool) throws(MediaError) {
        declaredSeconds = probe.trustedDuration(of: stream)
        input = probe
        if preferSndfile, probe.bestVideoStream == nil, SoundFile.handles(source), let file = try? SoundFile(source: source) {
            reader = try AudioReader(file, sampleRate: policy.sampleRate, limits: limits)
        } else {
            reader = try AudioReader(probe, stream: stream, sampleRate: policy.sampleRate, limits: limits)
        }
        self.policy = policy
        self.limits = limits
        alignment = alignToPictures ? .pending : .none
    }

    /// Seconds of the clip's timeline decoded so far: the track's (aligned) length once `next()` returned nil.
    var decodedSeconds: Double { Double(bufferStart + buffer.count) / Double(policy.sampleRate) }

    /// The next window, or nil after the last. Throws what the decoder hit (a track that holds no sound, goes past
    /// the length limit, or ends well before its header says).
    func next() throws(MediaError) -> Window? {
        let window = policy.windowSamples
        while true {
            let total = bufferStart + buffer.count
            if total >= nextStart + window, isAligned {
                defer { nextStart += policy.hopSamples }
                return take(start: nextStart)
            }
            if ended { return try tail(total: total) }
            ended = !(try reader.read(appendingTo: &buffer))
            align()
            trim()
        }
    }

    private var isAligned: Bool {
        if case .none = alignment { return true }
        return false
    }

    /// Once the first timestamp is known (or the track ended without one, as the whole-clip decoder takes 0),
    /// pads or drops the head; a head to drop may span several pieces.
    private func align() {
        if case .pending = alignment {
            guard reader.startSeconds != nil || ended else { return }
            let offset = AudioDecoding.offsetSamples(startSeconds: reader.startSeconds ?? 0, sampleRate: policy.sampleRate,
                                                     limits: limits)
            if offset > 0 { buffer.insert(contentsOf: [Float](repeating: 0, count: offset), at: 0) }
            alignment = offset < 0 ? .dropping(-offset) : .none
        }
        if case .dropping(let count) = alignment {
            let dropped = min(count, buffer.count)
            buffer.removeFirst(dropped)
            alignment = count > dropped && !ended ? .dropping(count - dropped) : .none
        }
    }

    /// After the last full-grid window: a track shorter than one window gives one looped window; otherwise a
    /// track whose end lies past the last window gets a last one ending exactly there.
    private func tail(total: Int) throws(MediaError) -> Window? {
        if emitted == 0 {
            try checkComplete()
            guard !buffer.isEmpty else { throw MediaError.noUsableStream(MediaDecoder.soundBeforePictures) }
            return emit(start: 0, waveform: Windowing.waveform(buffer, start: 0, length: policy.windowSamples))
        }
        guard lastEnd < total else {
            try checkComplete()
            return nil
        }
        return take(start: total - policy.windowSamples)
    }

    private func take(start: Int) -> Window {
        let offset = start - bufferStart
        return emit(start: start, waveform: Array(buffer[offset..<offset + policy.windowSamples]))
    }

    private func emit(start: Int, waveform: [Float]) -> Window {
        emitted += 1
        lastEnd = start + policy.windowSamples
        return Window(start: start, waveform: waveform)
    }

    /// Drops samples no window can need any more: those before the next start and before the last window's
    /// worth, which the pulled-back final window may reach into.
    private func trim() {
        guard isAligned else { return }
        let keepFrom = min(nextStart, bufferStart + buffer.count - policy.windowSamples)
        let drop = keepFrom - bufferStart
        guard drop > 0 else { return }
        buffer.removeFirst(drop)
        bufferStart += drop
    }

    private func checkComplete() throws(MediaError) {
        let decoded = Double(reader.produced) / Double(policy.sampleRate)
        if let error = MediaError.truncation(decoded: decoded, declared: declaredSeconds) { throw error }
    }
}
