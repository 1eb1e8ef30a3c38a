import Foundation

/// Elementwise kernels over contiguous rows, 8 lanes at a time (AVX2 width). They are memory-bound, so the
/// aim is only that they stay a few percent of the gemm time (issue: <= ~5% together).

typealias F8 = SIMD8<Float>

@inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func store(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// e^x for 8 lanes: Cephes expf (range reduction by ln 2, degree-6 polynomial), relative error ~1e-7.
@inline(__always) func exp8(_ x: F8) -> F8 {
    var x = x.replacing(with: -87.3, where: x .< -87.3)
    x = x.replacing(with: 88.3, where: x .> 88.3)
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits, which also serve as the Int32
    // conversion (Swift's generic SIMD float->int conversion is scalarised and was 10% of a video forward pass).
    let shifted = x * 1.44269504088896341 + 12582912
    let n = shifted - 12582912
    var r = x - n * 0.693359375
    r = r - n * (-2.12194440e-4)
    var p = F8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let bits = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: F8.self)
}

func vScale(_ v: UnsafeMutableBufferPointer<Float>, _ factor: Float) {
    let p = v.baseAddress!, n = v.count
    var i = 0
    while i + 8 <= n { store(load(p + i) * factor, p + i); i += 8 }
    while i < n { p[i] *= factor; i += 1 }
}

@inline(__always) func gelu8(_ x: F8) -> F8 {
    let u = 0.7978845608028654 * 2 * (x + 0.044715 * x * x * x)
    return x / (1 + exp8(-u))
}

/// GELU, tanh form (flax.linen.gelu, approximate=True): 0.5 x (1 + tanh(u)) written as x * sigmoid(2u),
/// u = sqrt(2/pi) (x + 0.044715 x^3).
func geluInPlace(_ m: MutableMatrix) {
    let c: Float = 0.7978845608028654 * 2
    parallelRows(m.rows, work: m.rows * m.cols) { range in
    for r in range {
        let p = m.base + r * m.ld, n = m.cols
        var i = 0
        while i + 8 <= n { store(gelu8(load(p + i)), p + i); i += 8 }
        while i < n {
            let x = p[i]
            let u = c * (x + 0.044715 * x * x * x)
            p[i] = x / (1 + expf(-u))
            i += 1
        }
    }
    }
}

/// The numerator of a row softmax, in place: x <- exp(x - max(row)); `inverseSums[r]` <- 1 / sum(row r).
/// Attention applies the 1/sum to the (tokens, headDim) product instead of the (tokens, tokens) scores, which
/// saves a full pass over the largest matrix of the forward pass.
func softmaxNumeratorRows(_ m: MutableMatrix, inverseSums: UnsafeMutablePointer<Float>) {
    parallelRows(m.rows, work: m.rows * m.cols) { range in
        for r in range {
            let p = m.base + r * m.ld, n = m.cols
            var i = 0
            var mv = F8(repeating: -.infinity)
            while i + 8 <= n { let v = load(p + i); mv = mv.replacing(with: v, where: v .> mv); i += 8 }
            var mx = mv.max()
            while i < n { mx = max(mx, p[i]); i += 1 }
            var sv = F8()
            var s: Float = 0
            i = 0
            while i + 8 <= n { let e = exp8(load(p + i) - mx); store(e, p + i); sv += e; i += 8 }
            while i < n { let e = expf(p[i] - mx); p[i] = e; s += e; i += 1 }
            inverseSums[r] = 1 / (s + sv.sum())
        }
    }
}

/// Row r of m times factors[r].
func scaleRows(_ m: MutableMatrix, by factors: UnsafePointer<Float>) {
    for r in 0..<m.rows { vScale(m.row(r), factors[r]) }
}

/// LayerNorm over each row: (x - mean) / sqrt(var + eps) * scale + bias, biased variance (spec A.6).
/// Statistics accumulate in Double so width-1024 rows lose nothing to cancellation.
func layerNorm(_ x: Matrix, scale: Matrix, bias: Matrix, eps: Float = 1e-6, into out: MutableMatrix) {
    precondition(x.rows == out.rows && x.cols == out.cols && scale.cols == x.cols && bias.cols == x.cols)
    let n = x.cols
    for r in 0..<x.rows {
        let src = UnsafeMutablePointer(mutating: x.base + r * x.ld), dst = out.base + r * out.ld
        var sum = F8(), i = 0
        while i + 8 <= n { sum += load(src + i); i += 8 }
        var total = Double(sum.sum())
        while i < n { total += Double(src[i]); i += 1 }
        let mean = Float(total / Double(n))
        var sq = F8(), j = 0
        while j + 8 <= n { let d = load(src + j) - mean; sq += d * d; j += 8 }
        var varTotal = Double(sq.sum())
        while j < n { let d = src[j] - mean; varTotal += Double(d * d); j += 1 }
        let rstd = Float(1 / (varTotal / Double(n) + Double(eps)).squareRoot())
        let g = UnsafeMutablePointer(mutating: scale.base), b = UnsafeMutablePointer(mutating: bias.base)
        var k = 0
        while k + 8 <= n { store((load(src + k) - mean) * rstd * load(g + k) + load(b + k), dst + k); k += 8 }
        while k < n { dst[k] = (src[k] - mean) * rstd * g[k] + b[k]; k += 1 }
    }
}

/// out[r] += v[r] for matching matrices.
func addInPlace(_ out: MutableMatrix, _ v: Matrix) {
    precondition(out.rows == v.rows && out.cols == v.cols)
    for r in 0..<out.rows {
        let p = out.base + r * out.ld, q = UnsafeMutablePointer(mutating: v.base + r * v.ld)
        var i = 0
        while i + 8 <= out.cols { store(load(p + i) + load(q + i), p + i); i += 8 }
        while i < out.cols { p[i] += q[i]; i += 1 }
    }
}

/// out[r] += v for every row r.
func addRowVector(_ out: MutableMatrix, _ v: Matrix) {
    precondition(v.rows == 1 && v.cols == out.cols)
    let q = UnsafeMutablePointer(mutating: v.base)
    for r in 0..<out.rows {
        let p = out.base + r * out.ld
        var i = 0
        while i + 8 <= out.cols { store(load(p + i) + load(q + i), p + i); i += 8 }
        while i < out.cols { p[i] += q[i]; i += 1 }
    }
}

/// out = mean over the rows of x (global average pooling of one item's tokens).
func meanOfRows(_ x: Matrix, into out: UnsafeMutableBufferPointer<Float>) {
    precondition(out.count == x.cols)
    let p = out.baseAddress!, n = x.cols
    p.initialize(repeating: 0, count: n)
    for r in 0..<x.rows {
        let q = UnsafeMutablePointer(mutating: x.base + r * x.ld)
        var i = 0
        while i + 8 <= n { store(load(p + i) + load(q + i), p + i); i += 8 }
        while i < n { p[i] += q[i]; i += 1 }
    }
    vScale(out, 1 / Float(x.rows))
}
