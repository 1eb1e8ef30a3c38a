/// How a clip is cut into model windows, in samples at the policy's rate.
///
/// Rule: a clip of `n` samples with window `w` and hop `h` gives 1 window when n <= w, otherwise
/// ceil((n - w) / h) + 1 windows starting at k * h, except that the last start is pulled back to n - w so
/// the last window ends exactly at the clip's end (it overlaps its neighbour instead of running past the end).
/// Only a clip shorter than one window is looped, as upstream's pipeline does.
enum Windowing {
    static func starts(totalSamples n: Int, window w: Int, hop h: Int) -> [Int] {
        precondition(w > 0 && h > 0, "window and hop must be positive")
        guard n > w else { return [0] }
        let count = (n - w + h - 1) / h + 1
        return (0..<count).map { min($0 * h, n - w) }
    }

    /// `length` samples from `start`, wrapping around to the beginning when the source is too short.
    static func waveform(_ samples: [Float], start: Int, length: Int) -> [Float] {
        precondition(!samples.isEmpty, "cannot loop an empty waveform")
        if start + length <= samples.count { return Array(samples[start..<start + length]) }
        var out = [Float]()
        out.reserveCapacity(length)
        var position = start % samples.count
        while out.count < length {
            let n = min(length - out.count, samples.count - position)
            out.append(contentsOf: samples[position..<position + n])
            position = 0
        }
        return out
    }
}
