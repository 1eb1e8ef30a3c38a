import Foundation

/// A weight matrix (K, N) made ready once, at load, for the engine that multiplies by it: a view into the
/// mapped bundle for OpenBLAS, or oneDNN's blocked copy (bf16, or int8 with per-column scales).
final class PreparedWeight: @unchecked Sendable {
    enum Storage {
        case openBLAS(Matrix)
        case oneDNN(OneDNNMatmul)
    }

    let rows: Int  // K
    let cols: Int  // N
    let storage: Storage
    private let owned: Buffer?  // for kernels built at load (q/k/v concatenated), which the mapping does not hold

    /// Whether products read `source`'s memory itself rather than a copy made at preparation.
    func reads(_ source: Matrix) -> Bool {
        if case .openBLAS(let kernel) = storage { return kernel.base == source.base }
        return false
    }

    init(_ storage: Storage, rows: Int, cols: Int, owned: Buffer? = nil) {
        self.storage = storage
        self.rows = rows
        self.cols = cols
        self.owned = owned
    }

    /// Bytes this weight keeps resident outside the bundle's mapping.
    var residentBytes: Int {
        switch storage {
        case .openBLAS: return owned.map { _ in rows * cols * MemoryLayout<Float>.size } ?? 0
        case .oneDNN(let product): return product.residentBytes
        }
    }
}

/// Turns weight matrices into `PreparedWeight`s for one engine and precision. Built once per model load.
final class WeightPreparer: @unchecked Sendable {
    let precision: Precision
    private let context: OneDNNContext?
    private(set) var engine: ComputeEngine
    private(set) var residentBytes = 0

    /// fp32 on OpenBLAS, available everywhere.
    init() {
        precision = .fp32
        context = nil
        engine = ComputeEngine(precision: .fp32, library: .openBLAS, kernel: nil)
    }

    init(precision: Precision) throws {
        try ComputeEngine.checkAvailable(precision)
        self.precision = precision
        context = precision == .fp32 ? nil : try OneDNNContext()
        engine = ComputeEngine(precision: precision, library: precision == .fp32 ? .openBLAS : .oneDNN, kernel: nil)
    }

    /// SmoothQuant (Xiao et al. 2023, α = 0.5) without calibration data: a pre-LN block's product reads
    /// LayerNorm output, whose channel j spans about 4|γ_j| + |β_j|. Trained transformers have a few channels far
    /// louder than the rest, and one per-token int8 scale then leaves the others a handful of levels. Dividing
    /// the norm's channel j by s_j = sqrt(range_j / mean range) and multiplying the kernel's row j by it moves
    /// half of that spread (in log terms) into the weights, which are quantised per column. Exact in real
    /// arithmetic; nil (no change) for fp32 and bf16, whose floating point needs no help.
    func smoothing(scale: Matrix, bias: Matrix) -> [Float]? {
        guard precision == .int8 else { return nil }
        let ranges = (0..<scale.cols).map { 4 * abs(scale.row(0)[$0]) + abs(bias.row(0)[$0]) }
        let mean = ranges.reduce(0, +) / Float(ranges.count)
        guard mean > 0 else { return nil }
        return ranges.map { max(($0 / mean).squareRoot(), 1e-3) }
    }

    /// `parts` are column blocks (K, n_i) of one product, concatenated here (q, k and v become one N = 3D product).
    /// `rowScale` (K) multiplies the kernel's rows (the LayerNorm divisor from `smoothing`).
    func prepare(_ parts: [Matrix], rowScale: [Float]? = nil) throws -> PreparedWeight {
        let k = parts[0].rows, n = parts.reduce(0) { $0 + $1.cols }
        precondition(parts.allSatisfy { $0.rows == k }, "prepare: column blocks differ in row count")
        precondition(rowScale.map { $0.count == k } ?? true, "prepare: row scale has the wrong length")
        var owned: Buffer? = nil
        var kernel = parts[0]
        if parts.count > 1 || rowScale != nil {
            let buffer = Buffer(capacity: k * n), joined = buffer.matrix(k, n)
            var column = 0
            for part in parts {
                joined.columns(column, part.cols).copy(from: part)
                column += part.cols
            }
            if let rowScale { for r in 0..<k { vScale(joined.row(r), rowScale[r]) } }
            owned = buffer
            kernel = joined.readOnly
        }
        guard let context else {
            let weight = PreparedWeight(.openBLAS(kernel), rows: k, cols: n, owned: owned)
            residentBytes += weight.residentBytes
            return weight
        }
        let source: OneDNNMatmul.Source = precision == .int8 ? .s8 : precision == .bf16 ? .bf16 : .f32
        let product = try OneDNNMatmul(kernel: kernel, source: source, context: context)
        engine = ComputeEngine(precision: precision, library: .oneDNN, kernel: product.implementation)
        residentBytes += product.residentBytes
        return PreparedWeight(.oneDNN(product), rows: k, cols: n)
    }
}

/// What a product does with its result in the same pass: out = act(x·W · rowScale + bias), or, for the residual
/// connections, out += x·W · rowScale + bias. `rowScale` is the per-token activation scale of int8 (1 otherwise).
struct Epilogue {
    enum Activation { case none, gelu }
    enum Output { case store, addToOutput }

    var bias: Matrix  // (1, N)
    var activation = Activation.none
    var output = Output.store
}

/// Scratch for the low-precision engines: the quantised or converted activations, their row scales and the
/// f32 product before the epilogue. One per `Workspace`.
final class GemmScratch {
    fileprivate var bytes = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    fileprivate var byteCapacity = 64
    fileprivate let rowScales = Buffer()
    fileprivate let product = Buffer()

    deinit { bytes.deallocate() }

    fileprivate func activations(_ count: Int) -> UnsafeMutableRawPointer {
        if count > byteCapacity {
            bytes.deallocate()
            bytes = .allocate(byteCount: count, alignment: 64)
            byteCapacity = count
        }
        return bytes
    }
}

/// The one product between activations and a prepared weight, epilogue included. x is (M, K), out is (M, N).
/// Which engine runs is decided by how `w` was prepared; callers never branch on it.
func gemm(_ x: Matrix, _ w: PreparedWeight, _ epilogue: Epilogue, into out: MutableMatrix, _ scratch: GemmScratch) {
    precondition(x.cols == w.rows, "gemm: x is \(x.rows)x\(x.cols) but the weight is \(w.rows)x\(w.cols)")
    precondition(out.rows == x.rows && out.cols == w.cols, "gemm: out is \(out.rows)x\(out.cols), expected \(x.rows)x\(w.cols)")
    precondition(epilogue.bias.rows == 1 && epilogue.bias.cols == w.cols, "gemm: bias has \(epilogue.bias.cols) values for \(w.cols) columns")
    guard x.rows > 0 else { return }
    switch w.storage {
    case .openBLAS(let kernel):
        // Bias laid down first and accumulated by sgemm (beta = 1): no extra pass for it.
        switch epilogue.output {
        case .store: out.fillRows(with: epilogue.bias)
        case .addToOutput: addRowVector(out, epilogue.bias)
        }
        gemm(x, kernel, into: out, beta: 1)
        if epilogue.activation == .gelu { geluInPlace(out) }
    case .oneDNN(let product):
        let m = x.rows, k = x.cols
        let rowScales = scratch.rowScales.matrix(1, m).base
        let input: UnsafeRawPointer
        switch product.source {
        case .s8:
            let q = scratch.activations(m * k).assumingMemoryBound(to: Int8.self)
            quantiseRows(x, into: q, scales: rowScales)
            input = UnsafeRawPointer(q)
        case .bf16:
            let h = scratch.activations(m * k * 2).assumingMemoryBound(to: UInt16.self)
            convertToBF16(x, into: h)
            rowScales.update(repeating: 1, count: m)
            input = UnsafeRawPointer(h)
        case .f32:
            preconditionFailure("oneDNN f32 products are made only by the bf16 probe; fp32 weights go to OpenBLAS")
        }
        let direct = epilogue.output == .store && out.ld == out.cols
        let result = direct ? out : scratch.product.matrix(m, w.cols)
        do {
            try product.run(source: input, rows: m, into: result.base, threads: BLAS.threads)
        } catch {
            // brgemm accepted this layout at load (M = 512) and takes any row count; only a broken installation
            // (or a kernel oneDNN can no longer generate) gets here, and the model cannot answer without it.
            preconditionFailure("\(error)")
        }
        applyEpilogue(result.readOnly, rowScales: rowScales, epilogue, into: out)
    }
}
