/// What runs the model's products on this machine: the start-up log line, the `avmae_compute_info` gauge and
/// the head of `bench --json` all say the same fields, so a slow machine can be told from a slow model.
public struct ComputeInfo: Sendable {
    public var cpu: CPUFeatures
    /// `openblas_get_corename()`: the kernel set OpenBLAS loaded.
    public var blasCore: String
    public var blasCoreOrigin: BLASKernelCheck.Origin
    public var backend: String
    public var precision: String
    public var threads: Int

    public init(cpu: CPUFeatures, blasCore: String, blasCoreOrigin: BLASKernelCheck.Origin,
                backend: String = "openblas", precision: String = "fp32", threads: Int) {
        (self.cpu, self.blasCore, self.blasCoreOrigin) = (cpu, blasCore, blasCoreOrigin)
        (self.backend, self.precision, self.threads) = (backend, precision, threads)
    }

    /// Label pairs of the `avmae_compute_info` gauge.
    public var labels: [(String, String)] {
        [("isa", cpu.isa.rawValue), ("blas_core", blasCore), ("backend", backend), ("precision", precision),
         ("threads", "\(threads)")]
    }

    /// Every field, for the start-up log line (as metadata) and the head of `bench --json`.
    public var fields: [(String, String)] {
        labels + [("blas_core_chosen_by", "\(blasCoreOrigin)"), ("cpu", cpu.modelName), ("vendor", cpu.vendor),
                  ("family", "\(cpu.family)"), ("model", "\(cpu.model)"),
                  ("features", cpu.features.sorted().map(\.rawValue).joined(separator: ","))]
    }

    /// `isa=avx512_bf16 blas_core=Haswell backend=openblas ... cpu="AMD EPYC" family=25 model=17 ...`
    public var summary: String {
        fields.map { key, value in value.contains(" ") ? "\(key)=\"\(value)\"" : "\(key)=\(value)" }
            .joined(separator: " ")
    }
}
