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

    init(precision: Precision) throws {
        try ComputeEngine.checkAvailable(precision)
        self.precision = precision
        context = precision == .fp32 ? nil : try OneDNNContext()
        engine = ComputeEngine(precision: precision, library: precision == .fp32 ? .openBLAS : .oneDNN, kernel: nil)
    }

    /// The stems and the head stay fp32: they are a few percent of the work, and the patch embedding sees raw
    /// log-mels and pixels whose range a per-token int8 scale would crush (models/README.md, accuracy).
    static let fullPrecision = try! WeightPreparer(precision: .fp32)

    /// `parts` are column blocks (K, n_i) of one product, concatenated here (q, k and v become one N = 3D product).
    func prepare(_ parts: [Matrix]) throws -> PreparedWeight {
        let k = parts[0].rows, n = parts.reduce(0) { $0 + $1.cols }
        precondition(parts.allSatisfy { $0.rows == k }, "prepare: column blocks differ in row count")
        var owned: Buffer? = nil
        var kernel = parts[0]
        if parts.count > 1 {
            let buffer = Buffer(capacity: k * n), joined = buffer.matrix(k, n)
            var column = 0
            for part in parts {
                joined.columns(column, part.cols).copy(from: part)
                column += part.cols
            }
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
            rowScales.update(repeating: 1, count: m)
            if x.ld == k {
                input = UnsafeRawPointer(x.base)
            } else {
                let copy = scratch.activations(m * k * 4).assumingMemoryBound(to: Float.self)
                MutableMatrix(base: copy, rows: m, cols: k, ld: k).copy(from: x)
                input = UnsafeRawPointer(copy)
            }
        }
        let direct = epilogue.output == .store && out.ld == out.cols
        let result = direct ? out : scratch.product.matrix(m, w.cols)
        do {
            try product.run(source: input, rows: m, into: result.base, threads: BLAS.threads)
        } catch {
            // Every shape was checked when the primitive was made; a failure here is a broken installation.
            preconditionFailure("\(error)")
        }
        applyEpilogue(result.readOnly, rowScales: rowScales, epilogue, into: out)
    }
}
