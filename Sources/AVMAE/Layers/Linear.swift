/// flax.linen.Dense / DenseGeneral with the kernel viewed as [in, out] (q/k/v kernels [D, H, Dh] and the
/// attention output kernel [H, Dh, D] are row-major reshapes of that, spec Part B §8.1).
/// The kernel is prepared at load for whichever engine the model runs; this type does not know which.
struct Linear {
    let kernel: PreparedWeight  // (in, out)
    let bias: Matrix            // (1, out)
    private let biasStorage: Buffer?  // when the bias is built at load (concatenated), not a view of the bundle

    /// `input` is the LayerNorm whose output this layer reads, if any (its `outputDivisor` goes into the kernel).
    init(_ w: WeightScope, kernelShape: [Int], biasShape: [Int], input: LayerNorm? = nil) throws {
        try self.init(concatenating: [w], kernelShape: kernelShape, biasShape: biasShape, input: input)
    }

    /// Several Dense layers reading the same input as one product, their outputs side by side in column order
    /// (q, k and v: one N = 3D product instead of three N = D ones).
    init(concatenating scopes: [WeightScope], kernelShape: [Int], biasShape: [Int], input: LayerNorm? = nil) throws {
        let outCount = biasShape.reduce(1, *), inCount = kernelShape.reduce(1, *) / outCount
        var kernels = [Weight](), biases = [Matrix]()
        for w in scopes {  // kernel then bias per layer: the order the demo bundle's random weights are drawn in
            kernels.append(try w("kernel", shape: kernelShape, as: inCount, outCount))
            biases.append(try w.vector("bias", biasShape).matrix)
        }
        kernel = try scopes[0].prepare(kernels, rowScale: input?.outputDivisor)
        if biases.count == 1 || scopes[0].store.isRecording {
            bias = Matrix(base: biases[0].base, rows: 1, cols: outCount * biases.count, ld: outCount * biases.count)
            biasStorage = nil
        } else {
            let storage = Buffer(capacity: outCount * biases.count), joined = storage.matrix(1, outCount * biases.count)
            for (i, b) in biases.enumerated() { joined.columns(i * outCount, outCount).copy(from: b) }
            bias = joined.readOnly
            biasStorage = storage
        }
    }

    /// out = x · W + b, then `activation`
    func callAsFunction(_ x: Matrix, into out: MutableMatrix, activation: Epilogue.Activation = .none, _ ws: Workspace) {
        gemm(x, kernel, Epilogue(bias: bias, activation: activation), into: out, ws.gemm)
    }

    /// out += x · W + b (the residual connections)
    func accumulate(_ x: Matrix, into out: MutableMatrix, _ ws: Workspace) {
        gemm(x, kernel, Epilogue(bias: bias, output: .addToOutput), into: out, ws.gemm)
    }
}

struct LayerNorm {
    let scale: Matrix  // (1, D)
    let bias: Matrix   // (1, D)
    /// Per-channel factors this norm's output is divided by, which the product reading it multiplies back into
    /// its kernel rows (WeightPreparer.smoothing); nil when the engine wants none.
    let outputDivisor: [Float]?
    private let storage: Buffer?  // the divided scale and bias, (2, D)

    /// `feedsProduct`: a weight product reads this norm's output and takes `outputDivisor` (the pre-LN blocks).
    init(_ w: WeightScope, dim: Int, feedsProduct: Bool = false) throws {
        let scale = try w.vector("scale", [dim]).matrix, bias = try w.vector("bias", [dim]).matrix
        guard feedsProduct, !w.store.isRecording, let divisor = w.preparer.smoothing(scale: scale, bias: bias) else {
            (self.scale, self.bias, outputDivisor, storage) = (scale, bias, nil, nil)
            return
        }
        let storage = Buffer(capacity: 2 * dim), params = storage.matrix(2, dim)
        for j in 0..<dim {
            params.row(0)[j] = scale.row(0)[j] / divisor[j]
            params.row(1)[j] = bias.row(0)[j] / divisor[j]
        }
        (self.scale, self.bias, outputDivisor, self.storage) = (params.readOnly.rows(0, 1), params.readOnly.rows(1, 1), divisor, storage)
    }

    func callAsFunction(_ x: Matrix, into out: MutableMatrix) {
        layerNorm(x, scale: scale, bias: bias, into: out)
    }
}
