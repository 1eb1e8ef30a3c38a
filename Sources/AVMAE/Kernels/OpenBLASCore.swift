/// One of the kernel sets ("cores") a DYNAMIC_ARCH OpenBLAS build carries, as `openblas_get_corename()` and
/// `OPENBLAS_CORETYPE` name them, with the instruction-set level its kernels use.
public struct OpenBLASCore: Equatable, Sendable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) { self.name = name }

    /// nil for a name this table does not know (a newer OpenBLAS may add cores); such a core is never replaced.
    public var isa: ISALevel? { Self.levels[name.lowercased()] }

    public var description: String { name }

    public static func == (a: OpenBLASCore, b: OpenBLASCore) -> Bool { a.name.lowercased() == b.name.lowercased() }

    /// The x86-64 cores of OpenBLAS 0.3.21 (driver/others/dynamic.c) and the newest ISA each one's kernels use.
    private static let levels: [String: ISALevel] = [
        "katmai": .sse2, "coppermine": .sse2, "northwood": .sse2, "opteron": .sse2,
        "prescott": .sse3, "core2": .sse3, "penryn": .sse3, "dunnington": .sse3, "nehalem": .sse3, "atom": .sse3,
        "barcelona": .sse3, "bobcat": .sse3,
        "sandybridge": .avx, "bulldozer": .avx, "piledriver": .avx, "steamroller": .avx, "excavator": .avx,
        "haswell": .avx2, "zen": .avx2,
        "skylakex": .avx512,
        "cooperlake": .avx512_bf16, "sapphirerapids": .avx512_bf16,
    ]

    /// The fastest core for a CPU, chosen by its features (and, where measurements demanded it, its vendor).
    ///
    /// Measured sgemm at the encoder's shapes (496/1568 x 1024 x 3072/4096, 496 x 4096 x 1024), 2 threads:
    /// - Intel Xeon family 6 model 207 (AVX-512 with BF16, VNNI, FP16; no AMX): Cooperlake 270-288 GFLOP/s,
    ///   SkylakeX 190-225, Haswell 96-118 (and Prescott, OpenBLAS 0.3.21's own pick there, 31-46).
    /// - AMD EPYC Zen 4 (family 25 model 17, AVX-512 with BF16 and VNNI executed as two 256-bit halves): see
    ///   `amdAVX512`; README's Benchmark section has the table.
    /// Newer cores than the table knows map to the best one it has (Cooperlake for AMX machines: OpenBLAS 0.3.21
    /// has no Sapphire Rapids kernels). Below AVX-512 this follows OpenBLAS's own mapping for known CPUs.
    public static func best(for cpu: CPUFeatures) -> OpenBLASCore {
        switch cpu.isa {
        case .amx, .avx512_bf16: cpu.isAMD ? amdAVX512 : OpenBLASCore("Cooperlake")
        case .avx512, .avx512_vnni: cpu.isAMD ? amdAVX512 : OpenBLASCore("SkylakeX")
        case .avx2: OpenBLASCore(cpu.isAMD ? "Zen" : "Haswell")
        case .avx: OpenBLASCore("Sandybridge")
        case .sse3: OpenBLASCore("Prescott")
        case .sse2: OpenBLASCore("Opteron")
        }
    }

    /// AMD cores with AVX-512 (Zen 4) split each 512-bit operation into two 256-bit ones, so the AVX-512 kernels
    /// gain no arithmetic over the AVX2 ones; what differs is blocking and packing.
    static let amdAVX512 = OpenBLASCore("Haswell")
}
