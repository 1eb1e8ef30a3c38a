import Foundation

/// The passes around a low-precision product: activations quantised or converted on the way in, and the
/// epilogue (row scale, bias, GELU, residual add) on the way out, each one pass over rows split across cores.

/// Symmetric per-row (per-token) int8: x[r] ≈ q[r] · scales[r], scales[r] = max|x[r]| / 127. Per token rather than
/// per tensor because one loud token would otherwise flatten every other token's resolution.
func quantiseRows(_ x: Matrix, into q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
    let n = x.cols
    parallelRows(x.rows, work: x.rows * n) { range in
        for r in range {
            let src = UnsafeMutablePointer(mutating: x.base + r * x.ld), dst = q + r * n
            var mv = F8(), i = 0
            while i + 8 <= n {
                // Sign bit cleared = |v|; `replacing` compiles to vmaxps, generic pointwiseMax did not inline.
                let v = unsafeBitCast(unsafeBitCast(load(src + i), to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: F8.self)
                mv = mv.replacing(with: v, where: v .> mv)
                i += 8
            }
            var peak = mv.max()
            while i < n { peak = max(peak, abs(src[i])); i += 1 }
            let scale = peak > 0 ? peak / 127 : 1
            scales[r] = scale
            let inverse = 1 / scale
            i = 0
            // Adding 1.5 * 2^23 rounds to nearest-even in the low mantissa bits (see exp8); |x / scale| <= 127.
            while i + 8 <= n {
                let shifted = load(src + i) * inverse + 12582912
                let integers = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
                let bytes = SIMD8<Int8>(truncatingIfNeeded: integers)
                UnsafeMutableRawPointer(dst + i).storeBytes(of: bytes, as: SIMD8<Int8>.self)
                i += 8
            }
            while i < n { dst[i] = Int8((src[i] * inverse).rounded()); i += 1 }
        }
    }
}

/// f32 -> bf16, round to nearest even (the values are finite activations, so no NaN handling).
func convertToBF16(_ x: Matrix, into h: UnsafeMutablePointer<UInt16>) {
    let n = x.cols
    parallelRows(x.rows, work: x.rows * n) { range in
        for r in range {
            let src = UnsafeRawPointer(x.base + r * x.ld), dst = h + r * n
            var i = 0
            while i + 8 <= n {
                let bits = src.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<UInt32>.self)
                let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
                UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: rounded), as: SIMD8<UInt16>.self)
                i += 8
            }
            while i < n {
                let bits = src.load(fromByteOffset: i * 4, as: UInt32.self)
                dst[i] = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                i += 1
            }
        }
    }
}

/// out = act(product · rowScales[r] + bias), or out += product · rowScales[r] + bias (Epilogue.Output).
func applyEpilogue(_ product: Matrix, rowScales: UnsafePointer<Float>, _ epilogue: Epilogue, into out: MutableMatrix) {
    let n = out.cols, bias = UnsafeMutablePointer(mutating: epilogue.bias.base)
    let gelu = epilogue.activation == .gelu, accumulate = epilogue.output == .addToOutput
    parallelRows(out.rows, work: out.rows * n) { range in
        for r in range {
            let src = UnsafeMutablePointer(mutating: product.base + r * product.ld), dst = out.base + r * out.ld
            let s = rowScales[r], sv = F8(repeating: s)
            var i = 0
            while i + 8 <= n {
                var v = load(src + i) * sv + load(bias + i)
                if gelu { v = gelu8(v) }
                store(accumulate ? load(dst + i) + v : v, dst + i)
                i += 8
            }
            while i < n {
                var v = src[i] * s + bias[i]
                if gelu { v = v / (1 + expf(-0.7978845608028654 * 2 * (v + 0.044715 * v * v * v))) }
                dst[i] = accumulate ? dst[i] + v : v
                i += 1
            }
        }
    }
}
