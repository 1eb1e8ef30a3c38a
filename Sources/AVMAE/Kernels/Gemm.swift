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

    /// One matrix-product shape: (m, k) x op(B) -> (m, n), issued `count` times.
    public struct Shape: Sendable {
        public var m: Int, k: Int, n: Int, transposeB: Bool, count: Int
        public init(m: Int, k: Int, n: Int, transposeB: Bool = false, count: Int = 1) {
            (self.m, self.k, self.n, self.transposeB, self.count) = (m, k, n, transposeB, count)
        }
        public var flops: Double { 2 * Double(m) * Double(k) * Double(n) * Double(count) }
    }

    /// Seconds cblas_sgemm alone takes for `shapes` (median of `runs` after a warm-up): the same-run baseline
    /// every model benchmark is reported against.
    public static func time(_ shapes: [Shape], runs: Int = 3) -> Double {
        let inputs = shapes.map { s -> (Buffer, Buffer, Buffer) in
            let a = Buffer(capacity: s.m * s.k), b = Buffer(capacity: s.k * s.n), c = Buffer(capacity: s.m * s.n)
            for (buf, count) in [(a, s.m * s.k), (b, s.k * s.n)] {
                for i in 0..<count { buf.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
            }
            return (a, b, c)
        }
        func once() {
            for (s, (a, b, c)) in zip(shapes, inputs) {
                let am = a.matrix(s.m, s.k).readOnly, cm = c.matrix(s.m, s.n)
                let bm = s.transposeB ? b.matrix(s.n, s.k).readOnly : b.matrix(s.k, s.n).readOnly
                for _ in 0..<s.count { gemm(am, bm, transposeB: s.transposeB, into: cm) }
            }
        }
        once()
        var times = [Double]()
        for _ in 0..<max(runs, 1) {
            let t = Clock.now()
            once()
            times.append(Clock.now() - t)
        }
        return times.sorted()[times.count / 2]
    }
}
