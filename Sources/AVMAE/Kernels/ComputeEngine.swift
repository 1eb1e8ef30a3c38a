import Foundation

/// The number format of the encoder's weight products. fp32 reproduces upstream's numbers and is the default;
/// int8 and bf16 trade a documented accuracy loss (models/README.md) for speed where the CPU runs them fast.
public enum Precision: String, CaseIterable, Sendable, Codable, LosslessStringConvertible {
    case fp32, int8, bf16
    public var description: String { rawValue }
    public init?(_ description: String) { self.init(rawValue: description) }
}

/// What oneDNN's own cpuid reading says this CPU can run, best first.
public enum InstructionSet: String, Sendable {
    case avx512AMX = "avx512_core_amx"
    case avx512BF16 = "avx512_core_bf16"
    case avx512VNNI = "avx512_core_vnni"
    case avx512 = "avx512_core"
    case avx2VNNI = "avx2_vnni"
    case avx2
    case older = "pre-avx2"
}

public enum ComputeError: Error, CustomStringConvertible, Equatable {
    case oneDNN(call: String, status: Int)
    case fallbackKernel(implementation: String)
    case precisionUnavailable(Precision, reason: String)

    public var description: String {
        switch self {
        case let .oneDNN(call, status):
            return "oneDNN call \(call) failed with status \(status)"
        case let .fallbackKernel(implementation):
            return "oneDNN picked its slow fallback kernel '\(implementation)' instead of brgemm on this CPU; "
                + "use --precision fp32 (OpenBLAS)"
        case let .precisionUnavailable(precision, reason):
            return "precision \(precision) is not available here: \(reason); use --precision fp32"
        }
    }
}

/// The engine and precision a model's weight products run on, chosen once at load. Layers never see it: they
/// hold `PreparedWeight`s and call `gemm(_:_:_:into:_:)`. Its `description` is what logs and `bench` print.
public struct ComputeEngine: Sendable, CustomStringConvertible {
    public enum Library: String, Sendable { case openBLAS = "openblas", oneDNN = "onednn" }

    public let precision: Precision
    public let library: Library
    /// The oneDNN kernel the encoder's products use (e.g. "brg:avx512_core_vnni"); nil for OpenBLAS.
    public let kernel: String?

    public var description: String {
        switch library {
        case .openBLAS: return "\(precision) on OpenBLAS"
        case .oneDNN: return "\(precision) on \(OneDNNContext.version) (\(kernel ?? "no product yet"))"
        }
    }

    /// The instruction set oneDNN would dispatch to on this CPU.
    public static var instructionSet: InstructionSet { OneDNNContext.instructionSet }

    /// Precisions this machine runs fast, fp32 first; `bench` runs every one of them by default.
    public static var availablePrecisions: [Precision] {
        Precision.allCases.filter { (try? checkAvailable($0)) != nil }
    }

    /// Refuses a precision the CPU would run slower than fp32 (or not at all), with the reason.
    public static func checkAvailable(_ precision: Precision) throws {
        let isa = instructionSet
        guard precision != .fp32 else { return }
        guard OneDNNContext.canGenerateCode else {
            throw ComputeError.precisionUnavailable(precision, reason: "oneDNN generates its kernels at run time and this process "
                + "may not create executable memory (systemd MemoryDenyWriteExecute=yes? see deploy/README.md for the drop-in)")
        }
        switch precision {
        case .fp32:
            return
        case .int8:
            // oneDNN 2.6's int8 brgemm needs AVX-512 (VNNI makes it 3-4x fp32).
            guard [.avx512AMX, .avx512BF16, .avx512VNNI, .avx512].contains(isa) else {
                throw ComputeError.precisionUnavailable(.int8, reason: "oneDNN 2.6 has no fast int8 kernel for \(isa.rawValue)")
            }
        case .bf16:
            guard [.avx512AMX, .avx512BF16].contains(isa) else {
                throw ComputeError.precisionUnavailable(.bf16, reason: "the CPU has no AVX512_BF16 (oneDNN sees \(isa.rawValue))")
            }
            try BF16Probe.shared.check()
        }
    }
}

/// Whether bf16 beats fp32 here, measured once per process. CPU features alone cannot tell: Zen 4 runs
/// AVX512_BF16 at twice fp32, an Intel family 6 model 207 without AMX at half, so this times
/// one encoder-shaped product both ways through oneDNN and keeps bf16 only if it is clearly faster.
final class BF16Probe: @unchecked Sendable {
    static let shared = BF16Probe()
    private let lock = NSLock()
    private var result: Result<Void, ComputeError>?

    /// bf16 must beat fp32 by this much to be worth its rounding error.
    static let requiredSpeedup = 1.3

    func check() throws {
        lock.lock()
        defer { lock.unlock() }
        if result == nil { result = measure() }
        try result!.get()
    }

    private func measure() -> Result<Void, ComputeError> {
        do {
            let context = try OneDNNContext()
            let (m, k, n) = (256, 1024, 1024)
            let weights = Buffer(capacity: k * n), input = Buffer(capacity: m * k), output = Buffer(capacity: m * n)
            for i in 0..<(k * n) { weights.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
            for i in 0..<(m * k) { input.pointer[i] = Float((i * 104_729) % 1000) / 1000 - 0.5 }
            let kernel = weights.matrix(k, n).readOnly
            let f32 = try OneDNNMatmul(kernel: kernel, source: .f32, context: context)
            let bf16 = try OneDNNMatmul(kernel: kernel, source: .bf16, context: context)
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: m * k)
            defer { halves.deallocate() }
            convertToBF16(input.matrix(m, k).readOnly, into: halves)
            // Interleaved, best of 9 each: on a shared machine both see the same neighbours.
            func time(_ body: () throws -> Void) rethrows -> Double {
                let t = Clock.now()
                try body()
                return Clock.now() - t
            }
            let threads = BLAS.threads
            var fp32Time = Double.infinity, bf16Time = Double.infinity
            for _ in 0..<9 {
                fp32Time = min(fp32Time, try time { try f32.run(source: input.pointer, rows: m, into: output.pointer, threads: threads) })
                bf16Time = min(bf16Time, try time { try bf16.run(source: halves, rows: m, into: output.pointer, threads: threads) })
            }
            let speedup = fp32Time / bf16Time
            guard speedup >= Self.requiredSpeedup else {
                return .failure(.precisionUnavailable(.bf16, reason: String(
                    format: "bf16 measured %.2fx fp32 on this CPU (needs %.1fx to pay for its rounding)", speedup, Self.requiredSpeedup)))
            }
            return .success(())
        } catch let error as ComputeError {
            return .failure(.precisionUnavailable(.bf16, reason: "\(error)"))
        } catch {
            return .failure(.precisionUnavailable(.bf16, reason: "\(error)"))
        }
    }
}
