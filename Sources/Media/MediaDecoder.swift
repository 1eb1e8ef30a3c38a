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
    /// Decode WAV and FLAC with libsndfile instead of FFmpeg (10-20% faster, measured with bench/decode.sh).
    public var preferSndfile: Bool

    public init(limits: MediaLimits = .init(), videoDecoderThreads: Int = 1, preferSndfile: Bool = true) {
        self.limits = limits
        self.videoDecoderThreads = videoDecoderThreads
        self.preferSndfile = preferSndfile
    }

    public func decode(_ bytes: [UInt8], policy: ClipPolicy) throws(MediaError) -> DecodedClip {
        guard !bytes.isEmpty else { throw MediaError.empty }
        guard bytes.count <= limits.maxBytes else { throw MediaError.tooLarge(bytes: bytes.count, limit: limits.maxBytes) }

        let probe = try FormatInput(bytes: bytes, limits: limits)
        if let declared = probe.declaredDuration, declared > limits.maxDurationSeconds {
            throw MediaError.tooLong(seconds: declared, limit: limits.maxDurationSeconds)
        }
        let audioStream = policy.wantAudio ? probe.bestAudioStream : nil
        var videoStream = policy.wantVideo ? probe.bestVideoStream : nil
        if let stream = videoStream, let unusable = try unusableVideo(probe, stream: stream) {
            // A picture too small to show anything is no video; the sound alone may still serve.
            guard audioStream != nil else { throw unusable }
            videoStream = nil
        }
        guard audioStream != nil || videoStream != nil else { throw missingStreams(probe, policy: policy) }

        var info = MediaInfo(container: probe.containerName, durationSeconds: probe.declaredDuration ?? 0)
        var waveform: [Float]?
        if let audioStream {
            let decoded = try decodeAudio(bytes, probe: probe, stream: audioStream, policy: policy)
            try checkComplete(decoded: Double(decoded.samples.count) / Double(policy.sampleRate),
                              declared: probe.trustedDuration(of: audioStream))
            let samples = videoStream == nil ? decoded.samples : align(decoded, policy: policy)
            let format = probe.audioFormat(of: audioStream)
            info.audio = .init(codec: probe.codecName(of: audioStream), sampleRate: format.sampleRate, channels: format.channels)
            info.durationSeconds = Double(samples.count) / Double(policy.sampleRate)
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
            videoInput = try FormatInput(bytes: bytes, limits: limits)
        }

        let starts = Windowing.starts(totalSamples: Int((info.durationSeconds * Double(policy.sampleRate)).rounded()),
                                      window: policy.windowSamples, hop: policy.hopSamples)
        var crops = [[UInt8]]()
        var times = [[Double]]()
        if videoStream != nil, starts.count * policy.crops > limits.maxVideoRows {
            throw MediaError.tooMuchVideo(windows: starts.count, crops: policy.crops, limit: limits.maxVideoRows)
        }
        if let videoStream, let videoInput, let video = info.video {
            times = starts.flatMap { start in
                FrameSampling.times(windowStart: Double(start) / Double(policy.sampleRate), clipSeconds: info.durationSeconds, policy: policy)
            }
            let sample = VideoSampling(stream: videoStream, rotation: video.rotation, threads: videoDecoderThreads, limits: limits,
                                       resize: CropResize(resizeShort: policy.resizeShort, cropSize: policy.cropSize))
            crops = try sample(videoInput, times: times, expectedEnd: probe.trustedDuration(of: videoStream, orContainer: false))
        }
        let windows = starts.enumerated().map { index, start in
            ClipWindow(index: index, startSeconds: Double(start) / Double(policy.sampleRate),
                       waveform: waveform.map { Windowing.waveform($0, start: start, length: policy.windowSamples) },
                       videoCrops: crops.isEmpty ? [] : Array(crops[index * policy.crops..<(index + 1) * policy.crops]),
                       frameTimes: crops.isEmpty ? [] : Array(times[index * policy.crops..<(index + 1) * policy.crops]))
        }
        return DecodedClip(info: info, windows: windows)
    }

    private func decodeAudio(_ bytes: [UInt8], probe: FormatInput, stream: Int,
                             policy: ClipPolicy) throws(MediaError) -> (samples: [Float], startSeconds: Double) {
        if preferSndfile, probe.bestVideoStream == nil, SoundFile.handles(bytes), let file = try? SoundFile(bytes: bytes) {
            return (try AudioDecoding.decode(file, sampleRate: policy.sampleRate, limits: limits), 0)
        }
        return try AudioDecoding.decode(probe, stream: stream, sampleRate: policy.sampleRate, limits: limits)
    }

    /// Puts sample 0 at clip time 0, where frame times start: sound that begins late (an empty edit in an MP4,
    /// a camera that starts recording sound after the picture) is preceded by silence, sound that begins early
    /// loses its head.
    private func align(_ audio: (samples: [Float], startSeconds: Double), policy: ClipPolicy) -> [Float] {
        let limit = Int(limits.maxDurationSeconds * Double(policy.sampleRate))
        let offset = max(-audio.samples.count, min(limit, Int((audio.startSeconds * Double(policy.sampleRate)).rounded())))
        if offset > 0 { return [Float](repeating: 0, count: offset) + audio.samples }
        if offset < 0 { return Array(audio.samples.dropFirst(-offset)) }
        return audio.samples
    }

    private func missingStreams(_ probe: FormatInput, policy: ClipPolicy) -> MediaError {
        switch (policy.wantAudio, policy.wantVideo) {
        case (true, false): return .noUsableStream("the file has no audio track, and this model only listens")
        case (false, true): return .noUsableStream("the file has no video track, and this model only watches")
        default: return .noUsableStream("the file has neither an audio nor a video track")
        }
    }

    /// Refuses frames over the pixel limit (as probed: the codec may correct the container's size); returns why
    /// a video too small to use is unusable.
    private func unusableVideo(_ probe: FormatInput, stream: Int) throws(MediaError) -> MediaError? {
        let size = probe.videoSize(of: stream)
        guard size.width * size.height <= limits.maxPixels else {
            throw MediaError.frameTooLarge(width: size.width, height: size.height, limitPixels: limits.maxPixels)
        }
        guard min(size.width, size.height) < limits.minVideoSide else { return nil }
        return .noUsableStream("the video is \(size.width)x\(size.height), smaller than \(limits.minVideoSide) px on a side")
    }

    private func checkComplete(decoded: Double, declared: Double?) throws(MediaError) {
        if let error = MediaError.truncation(decoded: decoded, declared: declared) { throw error }
    }

    private func videoDuration(_ probe: FormatInput, stream: Int) throws(MediaError) -> Double {
        var seconds = probe.declaredDuration
        if seconds == nil { seconds = try probe.scanEnd(of: stream) }
        guard let seconds, seconds > 0 else { throw MediaError.corrupt("the video has no frames with timestamps") }
        guard seconds <= limits.maxDurationSeconds else {
            throw MediaError.tooLong(seconds: seconds, limit: limits.maxDurationSeconds)
        }
        return seconds
    }
}
