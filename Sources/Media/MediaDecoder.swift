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
        let (probe, tracks) = try TrackChoice.open(.bytes(bytes), policy: policy, limits: limits)
        var info = MediaInfo(probe, tracks: tracks)
        var waveform: [Float]?
        if let audioStream = tracks.audio {
            let decoded = try decodeAudio(bytes, probe: probe, stream: audioStream, policy: policy)
            try checkComplete(decoded: Double(decoded.samples.count) / Double(policy.sampleRate),
                              declared: probe.trustedDuration(of: audioStream))
            let samples = tracks.video == nil ? decoded.samples : align(decoded, policy: policy)
            guard !samples.isEmpty else { throw MediaError.noUsableStream(Self.soundBeforePictures) }
            info.durationSeconds = Double(samples.count) / Double(policy.sampleRate)
            waveform = samples
        }
        var videoInput: FormatInput?
        if let videoStream = tracks.video {
            if waveform == nil {
                info.durationSeconds = try TrackChoice.videoSeconds(probe, stream: videoStream, limits: limits)
            }
            // The probe's demuxer has read to the end for the audio or the length; the video needs its own.
            videoInput = try FormatInput(bytes: bytes, limits: limits)
        }

        let starts = Windowing.starts(totalSamples: Int((info.durationSeconds * Double(policy.sampleRate)).rounded()),
                                      window: policy.windowSamples, hop: policy.hopSamples)
        var crops = [[UInt8]]()
        var times = [[Double]]()
        if tracks.video != nil, starts.count * policy.crops > limits.maxVideoRows {
            throw MediaError.tooMuchVideo(windows: starts.count, crops: policy.crops, limit: limits.maxVideoRows)
        }
        if let videoStream = tracks.video, let videoInput, let video = info.video {
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
        let offset = max(-audio.samples.count, AudioDecoding.offsetSamples(startSeconds: audio.startSeconds,
                                                                            sampleRate: policy.sampleRate, limits: limits))
        if offset > 0 { return [Float](repeating: 0, count: offset) + audio.samples }
        if offset < 0 { return Array(audio.samples.dropFirst(-offset)) }
        return audio.samples
    }

    /// Why a video whose sound ends before its pictures begin (its every sample dropped by `align`) is refused.
    static let soundBeforePictures = "the sound track ends before the pictures begin"

    private func checkComplete(decoded: Double, declared: Double?) throws(MediaError) {
        if let error = MediaError.truncation(decoded: decoded, declared: declared) { throw error }
    }
}
