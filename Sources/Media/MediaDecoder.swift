/// Turns uploaded bytes into model-ready windows: the entry point the server calls.
///
/// Each call opens its own demuxers, decoders and converters, so one `MediaDecoder` can be used from many
/// threads at once. Order of work: refuse by size, open and probe (FFmpeg), refuse by what the header declares
/// (streams, duration, frame size), decode all audio (its length fixes the windows), then decode only the
/// video frames the windows sample, from a second demuxer over the same bytes.
public struct MediaDecoder: Sendable {
    public var limits: MediaLimits
    /// Threads per video decoder. 1 by default: the server decodes several uploads at once and the model owns
    /// the cores; more threads lower one clip's latency, not the total cost.
    public var videoDecoderThreads: Int
    /// Decode WAV, FLAC and Ogg audio with libsndfile instead of FFmpeg (faster; see bench/decode).
    public var preferSndfile: Bool

    public init(limits: MediaLimits = .init(), videoDecoderThreads: Int = 1, preferSndfile: Bool = true) {
        self.limits = limits
        self.videoDecoderThreads = videoDecoderThreads
        self.preferSndfile = preferSndfile
    }

    public func decode(_ bytes: [UInt8], policy: ClipPolicy) throws(MediaError) -> DecodedClip {
        guard !bytes.isEmpty else { throw MediaError.empty }
        guard bytes.count <= limits.maxBytes else { throw MediaError.tooLarge(bytes: bytes.count, limit: limits.maxBytes) }

        let probe = try FormatInput(bytes: bytes)
        guard probe.streamCount <= limits.maxStreams else {
            throw MediaError.tooManyStreams(probe.streamCount, limit: limits.maxStreams)
        }
        if let declared = probe.declaredDuration, declared.seconds > limits.maxDurationSeconds {
            throw MediaError.tooLong(seconds: declared.seconds, limit: limits.maxDurationSeconds)
        }
        let audioStream = policy.wantAudio ? probe.bestAudioStream : nil
        let videoStream = policy.wantVideo ? probe.bestVideoStream : nil
        guard audioStream != nil || videoStream != nil else { throw missingStreams(probe, policy: policy) }
        if let videoStream { try checkFrameSize(probe, stream: videoStream) }

        var info = MediaInfo(container: probe.containerName, durationSeconds: probe.declaredDuration?.seconds ?? 0)
        var waveform: [Float]?
        if let audioStream {
            let samples = try decodeAudio(bytes, probe: probe, stream: audioStream, policy: policy)
            let format = probe.audioFormat(of: audioStream)
            info.audio = .init(codec: probe.codecName(of: audioStream), sampleRate: format.sampleRate, channels: format.channels)
            info.durationSeconds = Double(samples.count) / Double(policy.sampleRate)
            try checkComplete(decoded: info.durationSeconds, declared: probe.trustedDuration(of: audioStream))
            waveform = samples
        }
        var videoInput: FormatInput?
        if let videoStream {
            info.video = .init(codec: probe.codecName(of: videoStream), width: probe.videoSize(of: videoStream).width,
                               height: probe.videoSize(of: videoStream).height, fps: probe.frameRate(of: videoStream),
                               rotation: probe.rotation(of: videoStream))
            if waveform == nil {
                info.durationSeconds = try videoDuration(probe, stream: videoStream)
            }
            // The probe's demuxer has read to the end for the audio or the length; the video needs its own.
            videoInput = try FormatInput(bytes: bytes)
        }

        let starts = Windowing.starts(totalSamples: Int((info.durationSeconds * Double(policy.sampleRate)).rounded()),
                                      window: policy.windowSamples, hop: policy.hopSamples)
        var crops = [[Float]]()
        if let videoStream, let videoInput, let video = info.video {
            let times = starts.flatMap { start in
                FrameSampling.times(windowStart: Double(start) / Double(policy.sampleRate), clipSeconds: info.durationSeconds, policy: policy)
            }
            let sample = VideoSampling(stream: videoStream, rotation: video.rotation, threads: videoDecoderThreads, limits: limits,
                                       resize: CropResize(resizeShort: policy.resizeShort, cropSize: policy.cropSize))
            crops = try sample(videoInput, times: times)
        }
        let windows = starts.enumerated().map { index, start in
            ClipWindow(index: index, startSeconds: Double(start) / Double(policy.sampleRate),
                       waveform: waveform.map { Windowing.waveform($0, start: start, length: policy.windowSamples) },
                       videoCrops: crops.isEmpty ? [] : Array(crops[index * policy.crops..<(index + 1) * policy.crops]))
        }
        return DecodedClip(info: info, windows: windows)
    }

    private func decodeAudio(_ bytes: [UInt8], probe: FormatInput, stream: Int, policy: ClipPolicy) throws(MediaError) -> [Float] {
        if preferSndfile, probe.bestVideoStream == nil, SoundFile.handles(bytes), let file = try? SoundFile(bytes: bytes) {
            return try AudioDecoding.decode(file, sampleRate: policy.sampleRate, limits: limits)
        }
        return try AudioDecoding.decode(probe, stream: stream, sampleRate: policy.sampleRate, limits: limits)
    }

    private func missingStreams(_ probe: FormatInput, policy: ClipPolicy) -> MediaError {
        switch (policy.wantAudio, policy.wantVideo) {
        case (true, false): return .noUsableStream("the file has no audio track, and this model only listens")
        case (false, true): return .noUsableStream("the file has no video track, and this model only watches")
        default: return .noUsableStream("the file has neither an audio nor a video track")
        }
    }

    private func checkFrameSize(_ probe: FormatInput, stream: Int) throws(MediaError) {
        let size = probe.videoSize(of: stream)
        guard size.width * size.height <= limits.maxPixels else {
            throw MediaError.frameTooLarge(width: size.width, height: size.height, limitPixels: limits.maxPixels)
        }
        guard min(size.width, size.height) >= limits.minVideoSide else {
            throw MediaError.noUsableStream("the video is \(size.width)x\(size.height), smaller than \(limits.minVideoSide) px on a side")
        }
    }

    /// A stream that decodes to much less than its header promised was cut short (an interrupted upload).
    private func checkComplete(decoded: Double, declared: Double?) throws(MediaError) {
        guard let declared, decoded < declared * 0.9 - 0.1 else { return }
        throw MediaError.truncated("it holds \((decoded * 10).rounded() / 10) s of the \((declared * 10).rounded() / 10) s its header declares")
    }

    private func videoDuration(_ probe: FormatInput, stream: Int) throws(MediaError) -> Double {
        var seconds = probe.declaredDuration?.seconds
        if seconds == nil { seconds = try probe.scanEnd(of: stream) }
        guard let seconds, seconds > 0 else { throw MediaError.corrupt("the video has no frames with timestamps") }
        guard seconds <= limits.maxDurationSeconds else {
            throw MediaError.tooLong(seconds: seconds, limit: limits.maxDurationSeconds)
        }
        return seconds
    }
}
