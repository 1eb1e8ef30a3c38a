/// Which instants of a window the model's video frames show (spec Part A.4, Part B §2.1: DMVR's sampling).
///
/// The window's video is viewed at `fps` (25): N = floor(visible seconds * fps) frames. One crop takes
/// `frames` frames `stride` apart starting at max(0, floor((N - frames * stride) / 2)), the middle clip;
/// four crops start at linspace(0, N - frames * stride, 4), floored (0 for all when the clip is too short).
/// Frame indices past N wrap around to the window's start, as DMVR does for short videos.
enum FrameSampling {
    /// Per crop, the `frames` sample times in clip seconds.
    static func times(windowStart: Double, clipSeconds: Double, policy: ClipPolicy) -> [[Double]] {
        let visible = min(policy.windowSeconds, clipSeconds - windowStart)
        // The epsilon keeps an exact 10.0 s * 25 from flooring to 249 through rounding error.
        let n = max(1, Int((visible * policy.fps + 1e-6).rounded(.down)))
        let span = policy.frames * policy.stride
        let offsets: [Int]
        if policy.crops == 1 {
            offsets = [max(0, (n - span) / 2)]
        } else {
            let last = Double(max(0, n - span))
            offsets = (0..<policy.crops).map { Int((last * Double($0) / Double(policy.crops - 1)).rounded(.down)) }
        }
        return offsets.map { offset in
            (0..<policy.frames).map { k in windowStart + Double((offset + k * policy.stride) % n) / policy.fps }
        }
    }
}
