/// Which of a file's tracks a policy decodes, chosen alike for a whole clip (`MediaDecoder`) and a stream
/// (`ClipWindowStream`): the best audio track if the model listens, the best video track if it watches and the
/// picture is big enough to show anything. A picture too small is no video; the sound alone may still serve.
struct TrackChoice {
    var audio: Int?
    var video: Int?

    /// Throws when none of the wanted tracks is usable (`noUsableStream`, saying which was missing) or a frame is
    /// over the pixel limit.
    init(_ probe: FormatInput, policy: ClipPolicy, limits: MediaLimits) throws(MediaError) {
        audio = policy.wantAudio ? probe.bestAudioStream : nil
        video = policy.wantVideo ? probe.bestVideoStream : nil
        if let stream = video, let unusable = try Self.unusableVideo(probe, stream: stream, limits: limits) {
            guard audio != nil else { throw unusable }
            video = nil
        }
        guard audio != nil || video != nil else { throw Self.missing(policy) }
    }

    /// Opens `source` for `policy` and picks its tracks, refusing it as early as it can: empty, over the byte
    /// limit, not a container FFmpeg reads, a declared length over the duration limit, no usable track. The
    /// start both decoders share.
    static func open(_ source: MediaSource, policy: ClipPolicy,
                     limits: MediaLimits) throws(MediaError) -> (probe: FormatInput, tracks: TrackChoice) {
        guard source.count > 0 else { throw MediaError.empty }
        guard source.count <= limits.maxBytes else { throw MediaError.tooLarge(bytes: source.count, limit: limits.maxBytes) }
        let probe = try FormatInput(source: source, limits: limits)
        if let declared = probe.declaredDuration, declared > limits.maxDurationSeconds {
            throw MediaError.tooLong(seconds: declared, limit: limits.maxDurationSeconds)
        }
        return (probe, try TrackChoice(probe, policy: policy, limits: limits))
    }

    /// The video's length when it has no sound to measure it by: declared, or found by demuxing to the end.
    /// Leaves `probe` at its end.
    static func videoSeconds(_ probe: FormatInput, stream: Int, limits: MediaLimits) throws(MediaError) -> Double {
        var seconds = probe.declaredDuration
        if seconds == nil { seconds = try probe.scanEnd(of: stream) }
        guard let seconds, seconds > 0 else { throw MediaError.corrupt("the video has no frames with timestamps") }
        guard seconds <= limits.maxDurationSeconds else {
            throw MediaError.tooLong(seconds: seconds, limit: limits.maxDurationSeconds)
        }
        return seconds
    }

    private static func missing(_ policy: ClipPolicy) -> MediaError {
        switch (policy.wantAudio, policy.wantVideo) {
        case (true, false): return .noUsableStream("the file has no audio track, and this model only listens")
        case (false, true): return .noUsableStream("the file has no video track, and this model only watches")
        default: return .noUsableStream("the file has neither an audio nor a video track")
        }
    }

    /// Refuses frames over the pixel limit (as probed: the codec may correct the container's size); returns why
    /// a video too small to use is unusable.
    private static func unusableVideo(_ probe: FormatInput, stream: Int, limits: MediaLimits) throws(MediaError) -> MediaError? {
        let size = probe.videoSize(of: stream)
        guard size.width * size.height <= limits.maxPixels else {
            throw MediaError.frameTooLarge(width: size.width, height: size.height, limitPixels: limits.maxPixels)
        }
        guard min(size.width, size.height) < limits.minVideoSide else { return nil }
        return .noUsableStream("the video is \(size.width)x\(size.height), smaller than \(limits.minVideoSide) px on a side")
    }
}

extension MediaInfo {
    /// What the header says about the chosen tracks; `durationSeconds` is the declared length until decoding
    /// measures it.
    init(_ probe: FormatInput, tracks: TrackChoice) {
        self.init(container: probe.containerName, durationSeconds: probe.declaredDuration ?? 0)
        if let stream = tracks.audio {
            let format = probe.audioFormat(of: stream)
            audio = .init(codec: probe.codecName(of: stream), sampleRate: format.sampleRate, channels: format.channels)
        }
        if let stream = tracks.video {
            let size = probe.videoSize(of: stream)
            video = .init(codec: probe.codecName(of: stream), width: size.width, height: size.height,
                          fps: probe.frameRate(of: stream), rotation: probe.rotation(of: stream))
        }
    }
}
