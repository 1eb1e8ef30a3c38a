import Foundation

/// Waveform -> normalised log-mel spectrogram, tf.signal's computation with the bundle's numbers (spec Part A.1).
/// No FFT library: with the window folded into a real DFT basis, the STFT of every frame is one gemm, and the
/// mel projection is a second one. Both matrices are built once per model in float64, then rounded.
public struct LogMelFrontend: Sendable {
    public let config: FrontendConfig
    let bins: Int
    let dftBasis: [Float]    // (frame_length, 2 * bins): window * cos | window * sin
    let melWeights: [Float]  // (bins, mel_bins), HTK triangles, row 0 (DC) zero

    public init(_ config: FrontendConfig) {
        self.config = config
        bins = config.fftLength / 2 + 1
        dftBasis = Self.makeDFTBasis(config, bins: bins)
        melWeights = Self.makeMelWeights(config, bins: bins).map(Float.init)
    }

    public func frameCount(samples: Int) -> Int {
        let (len, step) = (config.frameLength, config.frameStep)
        if config.padEnd { return (samples + step - 1) / step }
        return samples < len ? 0 : 1 + (samples - len) / step
    }

    /// The mel weight matrix (fft_length/2 + 1, mel_bins) as used, rounded to float32.
    public var melMatrix: Tensor { Tensor(shape: [bins, config.melBins], data: melWeights) }

    /// (samples) -> (frames, mel_bins). Allocates its own scratch: for tools and tests, not the serving path.
    public func logMel(_ waveform: [Float]) -> Tensor {
        let frames = frameCount(samples: waveform.count), ws = Workspace()
        let out = ws.logMel.matrix(frames, config.melBins)
        waveform.withUnsafeBufferPointer { self($0, into: out, ws) }
        return Tensor(shape: [frames, config.melBins], data: out.readOnly.toArray())
    }

    /// waveform: `samples` floats -> out: (frameCount(samples), mel_bins)
    func callAsFunction(_ waveform: UnsafeBufferPointer<Float>, into out: MutableMatrix, _ ws: Workspace) {
        let (len, step) = (config.frameLength, config.frameStep)
        let frames = frameCount(samples: waveform.count)
        precondition(out.rows == frames && out.cols == config.melBins)
        guard frames > 0 else { return }
        let framed = ws.patches.matrix(frames, len)  // (frames, frame_length), zero past the end
        for f in 0..<frames {
            let row = framed.row(f), start = f * step
            let n = max(0, min(len, waveform.count - start))
            if n > 0 { row.baseAddress!.update(from: waveform.baseAddress! + start, count: n) }
            if n < len { (row.baseAddress! + n).initialize(repeating: 0, count: len - n) }
        }
        let spectrum = ws.spectrum.matrix(frames, 2 * bins)  // (frames, re | im)
        dftBasis.withUnsafeBufferPointer { basis in
            gemm(framed.readOnly, Matrix(base: basis.baseAddress!, rows: len, cols: 2 * bins, ld: 2 * bins), into: spectrum)
        }
        let power = config.spectrum == .power
        for f in 0..<frames {
            let row = spectrum.row(f).baseAddress!
            for k in 0..<bins {
                let p = row[k] * row[k] + row[bins + k] * row[bins + k]
                row[k] = power ? p : p.squareRoot()
            }
        }
        melWeights.withUnsafeBufferPointer { mel in
            gemm(spectrum.columns(0, bins).readOnly, Matrix(base: mel.baseAddress!, rows: bins, cols: config.melBins, ld: config.melBins), into: out)
        }
        let offset = Float(config.logOffset), mean = Float(config.mean), invStd = Float(1 / config.std)
        for f in 0..<frames {
            let row = out.row(f)
            for j in 0..<row.count { row[j] = (logf(row[j] + offset) - mean) * invStd }
        }
    }

    static func makeDFTBasis(_ c: FrontendConfig, bins: Int) -> [Float] {
        let n = Double(c.frameLength)
        var basis = [Float](repeating: 0, count: c.frameLength * 2 * bins)
        for t in 0..<c.frameLength {
            let phase = 2 * Double.pi * Double(t) / n
            let w = c.window == .hann ? 0.5 - 0.5 * cos(phase) : 0.54 - 0.46 * cos(phase)
            for k in 0..<bins {
                // Reduce k*t mod fft_length first so the angle stays small and exact in float64.
                let angle = 2 * Double.pi * Double((k * t) % c.fftLength) / Double(c.fftLength)
                basis[t * 2 * bins + k] = Float(w * cos(angle))
                basis[t * 2 * bins + bins + k] = Float(-w * sin(angle))
            }
        }
        return basis
    }

    /// tf.signal.linear_to_mel_weight_matrix: HTK mel = 1127 ln(1 + f/700), triangles with peak 1 in mel.
    static func makeMelWeights(_ c: FrontendConfig, bins: Int) -> [Double] {
        func mel(_ hz: Double) -> Double { 1127 * log(1 + hz / 700) }
        let nyquist = Double(c.sampleRate) / 2
        let lo = mel(c.lowerHz), hi = mel(c.upperHz)
        let edges = (0..<(c.melBins + 2)).map { lo + (hi - lo) * Double($0) / Double(c.melBins + 1) }
        var w = [Double](repeating: 0, count: bins * c.melBins)
        for i in 1..<bins {
            let m = mel(nyquist * Double(i) / Double(bins - 1))
            for j in 0..<c.melBins {
                let (l, ctr, r) = (edges[j], edges[j + 1], edges[j + 2])
                w[i * c.melBins + j] = max(0, min((m - l) / (ctr - l), (r - m) / (r - ctr)))
            }
        }
        return w
    }
}
