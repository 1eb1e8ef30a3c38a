import CCPU

/// What this CPU can run, read from the cpuid instruction (and XCR0 for what the OS enabled), never from the
/// model number: the same family/model has shipped with different features, and a vendor's new model is
/// unknown to older libraries (OpenBLAS 0.3.21 does not know Intel family 6 model 207 and falls back to SSE3).
public struct CPUFeatures: Sendable, Equatable {
    public var vendor: String
    /// The brand string, e.g. "AMD EPYC" (what lscpu shows as "Model name").
    public var modelName: String
    public var family: Int
    public var model: Int
    public var stepping: Int
    public var features: Set<Feature>

    public init(vendor: String, modelName: String, family: Int, model: Int, stepping: Int, features: Set<Feature>) {
        (self.vendor, self.modelName, self.family, self.model, self.stepping, self.features) =
            (vendor, modelName, family, model, stepping, features)
    }

    /// Names as in /proc/cpuinfo's flags (sse3 is "pni" there), so the two can be compared by eye.
    public enum Feature: String, CaseIterable, Sendable, Comparable {
        case sse2, sse3, ssse3, sse4_1, sse4_2, avx, fma, f16c, avx2
        case avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512_vnni, avx512_bf16, avx512_fp16
        case avx_vnni, amx_tile, amx_int8, amx_bf16

        public static func < (a: Feature, b: Feature) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public var isIntel: Bool { vendor == "GenuineIntel" }
    public var isAMD: Bool { vendor == "AuthenticAMD" }

    /// The highest instruction-set level all of whose features this CPU has and the OS enabled.
    public var isa: ISALevel {
        ISALevel.allCases.last { $0.required.isSubset(of: features) } ?? .sse2
    }

    /// This machine's CPU.
    public static func detect() -> CPUFeatures {
        let leaf0 = cpuid(0)
        let vendor = ascii([leaf0[1], leaf0[3], leaf0[2]])
        let leaf1 = cpuid(1), leaf7 = cpuid(7), leaf7s1 = cpuid(7, 1)
        let signature = Int(leaf1[0])
        let baseFamily = (signature >> 8) & 0xF, baseModel = (signature >> 4) & 0xF
        let family = baseFamily == 0xF ? baseFamily + (signature >> 20) & 0xFF : baseFamily
        let model = baseFamily == 0x6 || baseFamily == 0xF ? baseModel | ((signature >> 16) & 0xF) << 4 : baseModel
        let brand = ascii((0x8000_0002...0x8000_0004).flatMap { cpuid(UInt32($0)) })

        // (register value, bit, feature): leaf 1 ecx/edx, leaf 7.0 ebx/ecx/edx, leaf 7.1 eax.
        let bits: [(UInt32, Int, Feature)] = [
            (leaf1[3], 26, .sse2), (leaf1[2], 0, .sse3), (leaf1[2], 9, .ssse3), (leaf1[2], 19, .sse4_1),
            (leaf1[2], 20, .sse4_2), (leaf1[2], 28, .avx), (leaf1[2], 12, .fma), (leaf1[2], 29, .f16c),
            (leaf7[1], 5, .avx2), (leaf7[1], 16, .avx512f), (leaf7[1], 17, .avx512dq), (leaf7[1], 28, .avx512cd),
            (leaf7[1], 30, .avx512bw), (leaf7[1], 31, .avx512vl), (leaf7[2], 11, .avx512_vnni),
            (leaf7s1[0], 5, .avx512_bf16), (leaf7[3], 23, .avx512_fp16), (leaf7s1[0], 4, .avx_vnni),
            (leaf7[3], 24, .amx_tile), (leaf7[3], 25, .amx_int8), (leaf7[3], 22, .amx_bf16),
        ]
        var features = Set(bits.filter { value, bit, _ in value >> bit & 1 == 1 }.map(\.2))
        // The CPU may have registers the kernel does not save across context switches; then they are unusable.
        let xcr0 = avmae_xgetbv0()
        if xcr0 & 0x6 != 0x6 { features.subtract(Feature.allCases.filter { $0 >= .avx }) }
        if xcr0 & 0xE0 != 0xE0 { features.subtract(Feature.allCases.filter { $0 >= .avx512f && $0 <= .avx512_fp16 }) }
        if xcr0 & 0x6_0000 != 0x6_0000 { features.subtract([.amx_tile, .amx_int8, .amx_bf16]) }
        return CPUFeatures(vendor: vendor, modelName: trimmed(brand), family: family, model: model,
                           stepping: signature & 0xF, features: features)
    }

    private static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> [UInt32] {
        var out: [UInt32] = [0, 0, 0, 0]
        _ = avmae_cpuid(leaf, subleaf, &out)
        return out
    }

    /// Intel right-aligns its brand string with leading spaces; Linux trims them too (lscpu's "Model name").
    private static func trimmed(_ s: String) -> String {
        String(s.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    /// cpuid returns strings as little-endian bytes packed into registers, NUL-padded.
    private static func ascii(_ registers: [UInt32]) -> String {
        let bytes = registers.flatMap { r in (0..<4).map { UInt8(truncatingIfNeeded: r >> (8 * $0)) } }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Instruction-set levels in the order the matrix kernels gain from them. Each level includes the ones below.
public enum ISALevel: String, CaseIterable, Sendable, Comparable {
    case sse2, sse3, avx, avx2
    /// AVX-512 F/CD/DQ/BW/VL: what OpenBLAS's SkylakeX kernels use.
    case avx512
    case avx512_vnni
    /// AVX-512 with bf16 dot products: what OpenBLAS's Cooperlake kernels use.
    case avx512_bf16
    /// Intel's tile matrix unit (int8 and bf16); needs the kernel to enable its state (XCR0 bits 17-18).
    case amx

    public static func < (a: ISALevel, b: ISALevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Features a CPU needs for this level (and every level below it).
    var required: Set<CPUFeatures.Feature> {
        switch self {
        case .sse2: [.sse2]
        case .sse3: ISALevel.sse2.required.union([.sse3])
        case .avx: ISALevel.sse3.required.union([.avx])
        case .avx2: ISALevel.avx.required.union([.avx2, .fma])
        case .avx512: ISALevel.avx2.required.union([.avx512f, .avx512cd, .avx512dq, .avx512bw, .avx512vl])
        case .avx512_vnni: ISALevel.avx512.required.union([.avx512_vnni])
        case .avx512_bf16: ISALevel.avx512_vnni.required.union([.avx512_bf16])
        case .amx: ISALevel.avx512_bf16.required.union([.amx_tile, .amx_int8, .amx_bf16])
        }
    }
}
