import CBLAS

/// The one entry point for matrix products: C = alpha * A · op(B) + beta * C, row-major, via cblas_sgemm.
/// Most of the model's time is spent here; everything else in Kernels/ is bandwidth-bound loops.
func gemm(_ a: Matrix, _ b: Matrix, transposeB: Bool = false, into c: MutableMatrix,
          alpha: Float = 1, beta: Float = 0) {
    let k = a.cols
    let n = transposeB ? b.rows : b.cols
    precondition((transposeB ? b.cols : b.rows) == k, "gemm: A is \(a.rows)x\(a.cols) but op(B) has \(transposeB ? b.cols : b.rows) rows")
    precondition(c.rows == a.rows && c.cols == n, "gemm: C is \(c.rows)x\(c.cols), expected \(a.rows)x\(n)")
    guard a.rows > 0, n > 0 else { return }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(a.rows), Int32(n), Int32(k), alpha,
                a.base, Int32(a.ld), b.base, Int32(b.ld), beta, c.base, Int32(c.ld))
}

/// Process-wide OpenBLAS settings. OpenBLAS keeps one thread pool per process, so this is global by nature.
public enum BLAS {
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64"
    public static var configuration: String { String(cString: openblas_get_config()) }

    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Times cblas_sgemm on an [m,k]x[k,n] product (median of `runs` after a warm-up), in GFLOP/s: the
    /// baseline every model benchmark is reported against.
    public static func sgemmGFLOPS(m: Int, k: Int, n: Int, runs: Int = 5) -> Double {
        let a = Buffer(capacity: m * k), b = Buffer(capacity: k * n), c = Buffer(capacity: m * n)
        for (buf, count) in [(a, m * k), (b, k * n)] {
            for i in 0..<count { buf.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
        }
        let am = a.matrix(m, k).readOnly, bm = b.matrix(k, n).readOnly, cm = c.matrix(m, n)
        gemm(am, bm, into: cm)
        var times = [Double]()
        for _ in 0..<runs {
            let t = Clock.now()
            gemm(am, bm, into: cm)
            times.append(Clock.now() - t)
        }
        return 2.0 * Double(m * k * n) / times.sorted()[times.count / 2] / 1e9
    }
}
