import CDNNL
import Foundation

/// Every oneDNN C call in the project lives in this file. oneDNN (Debian libdnnl 2.6) is the int8/bf16 engine:
/// a weight matrix becomes a `OneDNNMatmul` once at load (reordered into the blocked layout the fastest kernel
/// wants, int8 weights with their per-column scales baked into the primitive), and each product executes it.

/// One oneDNN status code checked in one place: anything but success throws with the failing call's name.
@discardableResult
private func dnnl(_ status: dnnl_status_t, _ call: String = #function) throws -> dnnl_status_t {
    guard status == dnnl_success else { throw ComputeError.oneDNN(call: call, status: Int(status.rawValue)) }
    return status
}

/// The CPU engine and its stream. One per model; used by one inference thread at a time (the stream is not
/// thread-safe, and neither is the OpenMP thread count, which belongs to the calling thread).
final class OneDNNContext: @unchecked Sendable {
    fileprivate let engine: dnnl_engine_t
    fileprivate let stream: dnnl_stream_t

    init() throws {
        var engine: dnnl_engine_t?
        try dnnl(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        var stream: dnnl_stream_t?
        do {
            try dnnl(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        } catch {
            dnnl_engine_destroy(engine)
            throw error
        }
        self.engine = engine!
        self.stream = stream!
    }

    deinit {
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    /// OpenMP keeps its thread count per calling thread: whichever thread runs inference gets the BLAS count.
    fileprivate func useThreads(_ threads: Int) {
        if omp_get_max_threads() != Int32(threads) { omp_set_num_threads(Int32(threads)) }
    }

    /// The instruction set oneDNN dispatches to on this CPU (its own cpuid reading).
    static var instructionSet: InstructionSet {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: return .avx512AMX
        case dnnl_cpu_isa_avx512_core_bf16: return .avx512BF16
        case dnnl_cpu_isa_avx512_core_vnni: return .avx512VNNI
        case dnnl_cpu_isa_avx512_core: return .avx512
        case dnnl_cpu_isa_avx2_vnni: return .avx2VNNI
        case dnnl_cpu_isa_avx2: return .avx2
        default: return .older
        }
    }

    /// Whether this process may turn written memory into code, as oneDNN's run-time kernel generator must.
    /// systemd's MemoryDenyWriteExecute=yes (a seccomp filter) and the kernel's PR_SET_MDWE refuse it; oneDNN
    /// then dies inside its generator instead of reporting, so the engine asks first.
    static var canGenerateCode: Bool {
        let size = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let page = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), page != MAP_FAILED else {
            return false
        }
        defer { munmap(page, size) }
        return mprotect(page, size, PROT_READ | PROT_EXEC) == 0
    }

    static var version: String {
        guard let v = dnnl_version()?.pointee else { return "oneDNN" }
        return "oneDNN \(v.major).\(v.minor).\(v.patch)"
    }
}

/// y (M, N) f32 = x (M, K) · W (K, N), with x in `source` precision and W prepared once. For int8 the product
/// already carries W's per-column scales (oneDNN 2.6 is fast only with scales fixed at creation: runtime scales
/// fall back to `gemm:jit`); the per-row activation scale is left to the caller's epilogue.
final class OneDNNMatmul: @unchecked Sendable {
    enum Source { case f32, bf16, s8 }

    let k: Int
    let n: Int
    let source: Source
    /// The kernel oneDNN picked, e.g. "brg:avx512_core_vnni"; checked at preparation, never a silent fallback.
    let implementation: String
    private let context: OneDNNContext
    private let weightsDesc: dnnl_memory_desc_t
    private let weights: UnsafeMutableRawPointer  // in oneDNN's blocked layout
    private let weightsMemory: dnnl_memory_t
    private let columnScales: [Float]?
    private var primitives = [Int: dnnl_primitive_t]()  // by M
    private let lock = NSLock()

    /// Reference row count for choosing the weight layout; brgemm's blocked layout depends on K, N and types.
    private static let layoutRows = 512

    /// `kernel` (K, N) row-major f32; for `.s8`, `columnScales` are max|W[:, j]| / 127 and the kernel is quantised
    /// here. Throws `fallbackKernel` when oneDNN would run a reference or generic gemm kernel.
    init(kernel: Matrix, source: Source, context: OneDNNContext) throws {
        k = kernel.rows
        n = kernel.cols
        self.source = source
        self.context = context
        let weightType = Self.type(of: source)
        // For s8, the kernel rounded to integers (still f32, contiguous): the reorder converts them exactly.
        var plain: [Float]? = nil
        if source == .s8 {
            let (q, scales) = quantiseColumns(kernel)
            plain = q
            columnScales = scales
        } else {
            columnScales = nil
        }
        let probe = try Self.makePrimitiveDesc(m: Self.layoutRows, k: k, n: n, source: source,
                                               weights: nil, weightType: weightType, scales: columnScales, context)
        defer { dnnl_primitive_desc_destroy(probe) }
        implementation = try Self.implementation(of: probe)
        guard Self.isFast(implementation) else { throw ComputeError.fallbackKernel(implementation: implementation) }
        weightsDesc = dnnl_primitive_desc_query_md(probe, dnnl_query_weights_md, 0)!.pointee
        var desc = weightsDesc
        weights = .allocate(byteCount: max(dnnl_memory_desc_get_size(&desc), 64), alignment: 64)
        var memory: dnnl_memory_t?
        try dnnl(dnnl_memory_create(&memory, &desc, context.engine, weights), "dnnl_memory_create")
        weightsMemory = memory!
        // Reorder the plain (K, N) matrix, f32 (s8 values already rounded in f32 for s8), into the blocked one;
        // the reorder converts to the weight type.
        var plainDesc = dnnl_memory_desc_t()
        var dims: [Int64] = [Int64(k), Int64(n)]
        var strides: [Int64] = [Int64(kernel.ld), 1]
        try dnnl(dnnl_memory_desc_init_by_strides(&plainDesc, 2, &dims, dnnl_f32, &strides), "dnnl_memory_desc_init_by_strides")
        if let plain {
            strides = [Int64(n), 1]
            try dnnl(dnnl_memory_desc_init_by_strides(&plainDesc, 2, &dims, dnnl_f32, &strides), "dnnl_memory_desc_init_by_strides")
            try plain.withUnsafeBufferPointer { try reorder(from: &plainDesc, UnsafeMutableRawPointer(mutating: $0.baseAddress!)) }
        } else {
            try reorder(from: &plainDesc, UnsafeMutableRawPointer(mutating: kernel.base))
        }
    }

    deinit {
        for p in primitives.values { dnnl_primitive_destroy(p) }
        dnnl_memory_destroy(weightsMemory)
        weights.deallocate()
    }

    /// Bytes the prepared weights occupy.
    var residentBytes: Int {
        var desc = weightsDesc
        return dnnl_memory_desc_get_size(&desc)
    }

    /// dst (m, N) f32, contiguous = src (m, K) contiguous in `source` type · W.
    func run(source src: UnsafeRawPointer, rows m: Int, into dst: UnsafeMutablePointer<Float>, threads: Int) throws {
        let primitive = try self.primitive(rows: m)
        context.useThreads(threads)
        var srcDesc = Self.plainDesc(m, k, Self.type(of: source)), dstDesc = Self.plainDesc(m, n, dnnl_f32)
        var srcMemory: dnnl_memory_t?, dstMemory: dnnl_memory_t?
        try dnnl(dnnl_memory_create(&srcMemory, &srcDesc, context.engine, UnsafeMutableRawPointer(mutating: src)), "dnnl_memory_create")
        defer { dnnl_memory_destroy(srcMemory) }
        try dnnl(dnnl_memory_create(&dstMemory, &dstDesc, context.engine, dst), "dnnl_memory_create")
        defer { dnnl_memory_destroy(dstMemory) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: srcMemory),
                    dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weightsMemory),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: dstMemory)]
        try dnnl(dnnl_primitive_execute(primitive, context.stream, Int32(args.count), &args), "dnnl_primitive_execute")
        try dnnl(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
    }

    /// The primitive for m rows, made on first use (creation costs ~0.1 ms; a worker sees few distinct m).
    private func primitive(rows m: Int) throws -> dnnl_primitive_t {
        lock.lock()
        defer { lock.unlock() }
        if let p = primitives[m] { return p }
        var desc = weightsDesc
        let pd = try Self.makePrimitiveDesc(m: m, k: k, n: n, source: source, weights: &desc,
                                            weightType: desc.data_type, scales: columnScales, context)
        defer { dnnl_primitive_desc_destroy(pd) }
        let impl = try Self.implementation(of: pd)
        guard Self.isFast(impl) else { throw ComputeError.fallbackKernel(implementation: impl) }
        var p: dnnl_primitive_t?
        try dnnl(dnnl_primitive_create(&p, pd), "dnnl_primitive_create")
        primitives[m] = p!
        return p!
    }

    private func reorder(from plainDesc: inout dnnl_memory_desc_t, _ plain: UnsafeMutableRawPointer) throws {
        var pd: dnnl_primitive_desc_t?
        var dst = weightsDesc
        try dnnl(dnnl_reorder_primitive_desc_create(&pd, &plainDesc, context.engine, &dst, context.engine, nil),
                 "dnnl_reorder_primitive_desc_create")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        try dnnl(dnnl_primitive_create(&primitive, pd), "dnnl_primitive_create")
        defer { dnnl_primitive_destroy(primitive) }
        var src: dnnl_memory_t?
        try dnnl(dnnl_memory_create(&src, &plainDesc, context.engine, plain), "dnnl_memory_create")
        defer { dnnl_memory_destroy(src) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: src), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: weightsMemory)]
        try dnnl(dnnl_primitive_execute(primitive, context.stream, Int32(args.count), &args), "dnnl_primitive_execute")
        try dnnl(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
    }

    private static func type(of source: Source) -> dnnl_data_type_t {
        switch source {
        case .f32: dnnl_f32
        case .bf16: dnnl_bf16
        case .s8: dnnl_s8
        }
    }

    private static func plainDesc(_ rows: Int, _ cols: Int, _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        var dims: [Int64] = [Int64(rows), Int64(cols)]
        dnnl_memory_desc_init_by_tag(&desc, 2, &dims, type, dnnl_ab)  // cannot fail for a plain 2-D f32/bf16/s8 tag
        return desc
    }

    /// `weights` nil asks oneDNN for its preferred layout (format any).
    private static func makePrimitiveDesc(m: Int, k: Int, n: Int, source: Source, weights: UnsafeMutablePointer<dnnl_memory_desc_t>?,
                                          weightType: dnnl_data_type_t, scales: [Float]?,
                                          _ context: OneDNNContext) throws -> dnnl_primitive_desc_t {
        var srcDesc = plainDesc(m, k, type(of: source)), dstDesc = plainDesc(m, n, dnnl_f32)
        var weightsDesc = weights?.pointee ?? dnnl_memory_desc_t()
        if weights == nil {
            var dims: [Int64] = [Int64(k), Int64(n)]
            try dnnl(dnnl_memory_desc_init_by_tag(&weightsDesc, 2, &dims, weightType, dnnl_format_tag_any), "dnnl_memory_desc_init_by_tag")
        }
        var op = dnnl_matmul_desc_t()
        try dnnl(dnnl_matmul_desc_init(&op, &srcDesc, &weightsDesc, nil, &dstDesc), "dnnl_matmul_desc_init")
        var attr: dnnl_primitive_attr_t?
        try dnnl(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        if let scales {
            try dnnl(dnnl_primitive_attr_set_output_scales(attr, Int64(scales.count), 1 << 1, scales),
                     "dnnl_primitive_attr_set_output_scales")
        }
        var pd: dnnl_primitive_desc_t?
        try dnnl(dnnl_primitive_desc_create(&pd, &op, attr, context.engine, nil), "dnnl_primitive_desc_create")
        return pd!
    }

    private static func implementation(of pd: dnnl_primitive_desc_t) throws -> String {
        var info: UnsafePointer<CChar>?
        try dnnl(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info), "dnnl_primitive_desc_query")
        return info.map { String(cString: $0) } ?? "unknown"
    }

    /// brgemm (brg:*) is the blocked VNNI/bf16/AVX-512 kernel; `gemm:jit` repacks per call and `ref` is scalar.
    static func isFast(_ implementation: String) -> Bool { implementation.hasPrefix("brg") }
}

/// Symmetric per-column int8: W[:, j] ≈ q[:, j] · s_j with s_j = max|W[:, j]| / 127. Returns q as rounded floats
/// (the reorder converts them to s8 exactly) and the scales.
private func quantiseColumns(_ w: Matrix) -> ([Float], [Float]) {
    var maxima = [Float](repeating: 0, count: w.cols)
    for r in 0..<w.rows {
        let row = w.row(r)
        for j in 0..<w.cols { maxima[j] = max(maxima[j], abs(row[j])) }
    }
    let scales = maxima.map { $0 > 0 ? $0 / 127 : 1 }
    let inverse = scales.map { 1 / $0 }
    var q = [Float](repeating: 0, count: w.rows * w.cols)
    for r in 0..<w.rows {
        let row = w.row(r)
        for j in 0..<w.cols { q[r * w.cols + j] = (row[j] * inverse[j]).rounded() }
    }
    return (q, scales)
}
