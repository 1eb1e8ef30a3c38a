/// Decodes only the video frames the model will see, and renders each into its crops.
///
/// A sample time t shows the frame on screen at t: the last frame whose timestamp is <= t (the first frame for
/// times before it, the last for times after the end). Frames are decoded in order from the keyframe before the
/// first time; when the next time lies more than `seekGap` ahead, the demuxer jumps to the keyframe before it.
/// Packets whose frame cannot be on screen at any pending time are decoded with non-reference frames skipped.
/// A frame shown at several times (a short clip, overlapping crops) is converted once and copied.
struct VideoSampling {
    /// Beyond this many seconds between the decoder's position and the next time, seeking beats decoding on.
    static let seekGap = 1.0
    /// Sample times are sums of window starts and frame steps; a frame stamped within this of a time counts as
    /// on screen at it, so 1.0 + 67 / 25 = 3.67999... still picks the frame stamped 3.68, and so does a clip origin
    /// FFmpeg rounded to whole microseconds. No more: a 29.97 fps frame can be stamped 33 us after a 25 fps time.
    static let timeTolerance = 1e-6

    let stream: Int
    let rotation: Int
    let threads: Int
    let limits: MediaLimits
    let resize: CropResize

    private struct Target {
        var time: Double
        var crop: Int
        var frame: Int
    }

    /// `times[c][k]` is when crop c's frame k is shown; returns each crop as [frames, crop, crop, 3] bytes.
    /// `expectedEnd`, the stream's declared length, turns pictures that stop well before it into `truncated`.
    func callAsFunction(_ input: FormatInput, times: [[Double]], expectedEnd: Double?) throws(MediaError) -> [[UInt8]] {
        let plane = resize.cropSize * resize.cropSize * 3
        var outputs = times.map { [UInt8](repeating: 0, count: $0.count * plane) }
        let targets = times.enumerated().flatMap { c, frames in
            frames.enumerated().map { k, t in Target(time: t, crop: c, frame: k) }
        }.sorted { $0.time < $1.time }
        guard !targets.isEmpty else { return outputs }

        input.keepOnly(stream)
        let decoder = try Decoder(parameters: input.codecParameters(of: stream), threads: threads, maxPixels: limits.maxPixels)
        let scaler = Scaler()
        let packet = try Packet()
        var previous = try Frame(), current = try Frame()
        var previousTime: Double?
        var next = 0
        var image = RGBImage()
        var firstError: MediaError?
        var framesDecoded = 0
        // Each target may trigger one seek at most: a container whose seek lands earlier than asked (mov
        // ignores the lower bound) then costs extra decoding, never a loop.
        var seekedFor = -1
        let timeBase = input.timeBase(of: stream), origin = input.startSeconds
        let frameDuration = 1 / (input.frameRate(of: stream) > 0 ? input.frameRate(of: stream) : 25)

        // Renders `frame` into every pending target shown before `limit`.
        func show(_ frame: Frame, before limit: Double) throws(MediaError) {
            var rendered: Target?
            while next < targets.count, targets[next].time < limit - Self.timeTolerance {
                let target = targets[next]
                if let source = rendered {
                    let copy = outputs[source.crop][source.frame * plane..<(source.frame + 1) * plane]
                    outputs[target.crop].replaceSubrange(target.frame * plane..<(target.frame + 1) * plane, with: copy)
                } else {
                    try scaler.convert(frame, into: &image)
                    resize(image, rotation: rotation, into: &outputs[target.crop], at: target.frame * plane)
                    rendered = target
                }
                next += 1
            }
        }

        func seekIfFar() {
            guard next < targets.count, next > seekedFor else { return }
            let position = previousTime ?? 0
            guard targets[next].time - position > Self.seekGap,
                  input.seek(stream: stream, to: targets[next].time, notBefore: previousTime.map { $0 + frameDuration / 2 } ?? 0)
            else { return }
            seekedFor = next
            decoder.flush()
            previousTime = nil
        }

        // A packet's frame matters if it could be on screen at a pending time.
        func mayBeShown(at packetTime: Double) -> Bool {
            var i = next
            while i < targets.count, targets[i].time < packetTime + 1.5 * frameDuration {
                if targets[i].time >= packetTime - 0.5 * frameDuration { return true }
                i += 1
            }
            return false
        }

        func drain() throws(MediaError) {
            while next < targets.count {
                let got: Bool
                do { got = try decoder.receive(into: current) } catch { firstError = firstError ?? error; return }
                guard got else { return }
                guard current.width * current.height <= limits.maxPixels else {
                    throw MediaError.frameTooLarge(width: current.width, height: current.height, limitPixels: limits.maxPixels)
                }
                framesDecoded += 1
                let time = current.timestamp.map { Double($0) * timeBase - origin } ?? (previousTime.map { $0 + frameDuration } ?? 0)
                try show(previousTime == nil ? current : previous, before: time)
                swap(&previous, &current)
                current.unref()
                previousTime = time
                seekIfFar()
            }
        }

        seekIfFar()
        while next < targets.count {
            let more: Bool
            do { more = try input.read(into: packet) } catch { firstError = firstError ?? error; break }
            guard more else { break }
            if packet.streamIndex == stream {
                decoder.skipsNonReferenceFrames = packet.timestamp.map { !mayBeShown(at: Double($0) * timeBase - origin) } ?? false
                do { try decoder.send(packet) } catch { firstError = firstError ?? error }
                try drain()
            }
            packet.unref()
        }
        decoder.skipsNonReferenceFrames = false
        do { try decoder.send(nil) } catch { firstError = firstError ?? error }
        try drain()
        guard framesDecoded > 0, let lastTime = previousTime else {
            throw firstError ?? MediaError.corrupt("the video stream holds no decodable frames")
        }
        // Times still pending at the end of the data fall after the last picture: fine for a clip padded by its
        // sound, not for pictures that stop far short of what the header declares.
        if next < targets.count, let error = MediaError.truncation(decoded: lastTime + frameDuration, declared: expectedEnd) {
            throw error
        }
        try show(previous, before: .infinity)
        return outputs
    }
}
