/// One weight product through the same seam the model uses, for accuracy checks and benchmarks outside the
/// module: y (M, N) = x (M, K) · W (K, N) + b, with W prepared once for `precision`.
public final class WeightProduct {
    public let precision: Precision
    private let weight: PreparedWeight
    private let kernel: Buffer  // the fp32 kernel, which an OpenBLAS-prepared weight views
    private let bias: Buffer
    private let scratch = GemmScratch()

    /// `kernel` row-major (K, N), `bias` (N).
    public init(kernel values: [Float], rows k: Int, cols n: Int, bias biasValues: [Float], precision: Precision) throws {
        precondition(values.count == k * n && biasValues.count == n, "WeightProduct: kernel or bias has the wrong size")
        self.precision = precision
        kernel = Buffer(capacity: k * n)
        kernel.matrix(k, n).fill(from: values)
        bias = Buffer(capacity: n)
        bias.matrix(1, n).fill(from: biasValues)
        weight = try WeightPreparer(precision: precision).prepare([kernel.matrix(k, n).readOnly])
    }

    /// x row-major (M, K) -> (M, N)
    public func callAsFunction(_ x: [Float]) -> [Float] {
        let k = weight.rows, n = weight.cols, m = x.count / k
        precondition(x.count == m * k, "WeightProduct: input is not a whole number of \(k)-wide rows")
        let input = Buffer(capacity: m * k), output = Buffer(capacity: m * n)
        input.matrix(m, k).fill(from: x)
        let out = output.matrix(m, n)
        gemm(input.matrix(m, k).readOnly, weight, Epilogue(bias: bias.matrix(1, n).readOnly), into: out, scratch)
        return out.readOnly.toArray()
    }
}
