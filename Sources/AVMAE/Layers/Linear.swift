/// flax.linen.Dense / DenseGeneral with the kernel viewed as [in, out] (q/k/v kernels [D, H, Dh] and the
/// attention output kernel [H, Dh, D] are row-major reshapes of that, spec Part B §8.1).
struct Linear {
    let kernel: Matrix  // (in, out)
    let bias: Matrix    // (1, out)

    init(_ w: WeightScope, kernelShape: [Int], biasShape: [Int]) throws {
        let outCount = biasShape.reduce(1, *)
        kernel = try w("kernel", shape: kernelShape, as: kernelShape.reduce(1, *) / outCount, outCount).matrix
        bias = try w.vector("bias", biasShape).matrix
    }

    /// out = x · W + b
    func callAsFunction(_ x: Matrix, into out: MutableMatrix) {
        out.fillRows(with: bias)
        gemm(x, kernel, into: out, beta: 1)
    }

    /// out += x · W + b (the residual connections)
    func accumulate(_ x: Matrix, into out: MutableMatrix) {
        addRowVector(out, bias)
        gemm(x, kernel, into: out, beta: 1)
    }
}

struct LayerNorm {
    let scale: Matrix  // (1, D)
    let bias: Matrix   // (1, D)

    init(_ w: WeightScope, dim: Int) throws {
        scale = try w.vector("scale", [dim]).matrix
        bias = try w.vector("bias", [dim]).matrix
    }

    func callAsFunction(_ x: Matrix, into out: MutableMatrix) {
        layerNorm(x, scale: scale, bias: bias, into: out)
    }
}
