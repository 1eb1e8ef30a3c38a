import AVMAE
import Foundation
import XCTest

/// CPU features read from cpuid, and the choice of OpenBLAS core, on this machine and on the CPUs this kind of
/// machine has had (their feature sets written out from their /proc/cpuinfo flags).
final class BLASKernelCheckTests: XCTestCase {
    static let avx512: Set<CPUFeatures.Feature> = [.sse2, .sse3, .ssse3, .sse4_1, .sse4_2, .avx, .fma, .f16c, .avx2,
                                                    .avx512f, .avx512dq, .avx512cd, .avx512bw, .avx512vl, .avx512_vnni]
    let zen4 = CPUFeatures(vendor: "AuthenticAMD", modelName: "AMD EPYC", family: 25, model: 17, stepping: 1,
                           features: avx512.union([.avx512_bf16]))
    let intel207 = CPUFeatures(vendor: "GenuineIntel", modelName: "Intel(R) Xeon(R) Processor", family: 6, model: 207,
                               stepping: 2, features: avx512.union([.avx512_bf16, .avx512_fp16, .avx_vnni]))
    let skylake = CPUFeatures(vendor: "GenuineIntel", modelName: "Intel(R) Xeon(R) Gold 6148", family: 6, model: 85,
                              stepping: 4, features: avx512.subtracting([.avx512_vnni]))
    let haswell = CPUFeatures(vendor: "GenuineIntel", modelName: "Intel(R) Xeon(R) E5-2680 v3", family: 6, model: 63,
                              stepping: 2, features: [.sse2, .sse3, .ssse3, .sse4_1, .sse4_2, .avx, .fma, .f16c, .avx2])

    func testDetectedFeaturesMatchTheKernelsCPUInfo() throws {
        let cpu = CPUFeatures.detect()
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        func field(_ key: String) throws -> String {
            let line = try XCTUnwrap(text.split(separator: "\n").first {
                $0.split(separator: ":")[0].trimmingCharacters(in: .whitespaces) == key
            })
            return line.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
        }
        XCTAssertEqual(cpu.vendor, try field("vendor_id"))
        XCTAssertEqual(cpu.modelName, try field("model name"))
        XCTAssertEqual(cpu.family, Int(try field("cpu family")))
        XCTAssertEqual(cpu.model, Int(try field("model")))
        XCTAssertEqual(cpu.stepping, Int(try field("stepping")))
        // The kernel reports only what it enabled, as cpuid + XCR0 do; SSE3 is "pni" there.
        let flags = Set(try field("flags").split(separator: " ").map { $0 == "pni" ? "sse3" : String($0) })
        for feature in CPUFeatures.Feature.allCases {
            XCTAssertEqual(cpu.features.contains(feature), flags.contains(feature.rawValue), "\(feature)")
        }
    }

    func testISALevelIsTheHighestCompleteSet() {
        XCTAssertEqual(zen4.isa, .avx512_bf16)
        XCTAssertEqual(intel207.isa, .avx512_bf16)
        XCTAssertEqual(skylake.isa, .avx512)
        XCTAssertEqual(haswell.isa, .avx2)
        var noFMA = haswell
        noFMA.features.remove(.fma)
        XCTAssertEqual(noFMA.isa, .avx, "AVX2 without FMA is not what the AVX2 kernels need")
    }

    func testBestCoreFollowsFeaturesAndTheMeasurements() {
        XCTAssertEqual(OpenBLASCore.best(for: intel207), OpenBLASCore("Cooperlake"))
        XCTAssertEqual(OpenBLASCore.best(for: skylake), OpenBLASCore("SkylakeX"))
        XCTAssertEqual(OpenBLASCore.best(for: haswell), OpenBLASCore("Haswell"))
        XCTAssertEqual(OpenBLASCore.best(for: zen4), OpenBLASCore("Haswell"))
        XCTAssertEqual(OpenBLASCore("COOPERLAKE").isa, .avx512_bf16, "core names compare case-insensitively")
        XCTAssertNil(OpenBLASCore("Zen5").isa)
    }

    func testOpenBLASsOwnFallbackIsCorrectedByReexecuting() {
        // Debian 12's OpenBLAS 0.3.21 on Intel family 6 model 207 (OpenBLAS issue #4267).
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("Prescott"), environment: [:]),
                       .reexec(OpenBLASCore("Cooperlake")))
        // Zen 4: OpenBLAS picks Cooperlake, the AVX2 kernels measured faster.
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: zen4, inUse: OpenBLASCore("Cooperlake"), environment: [:]),
                       .reexec(OpenBLASCore("Haswell")))
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("Cooperlake"), environment: [:]),
                       .run(.detected))
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("SapphireRapidsNext"), environment: [:]),
                       .run(.detected), "a core newer than the table is OpenBLAS's informed choice")
    }

    func testReexecutedProcessRunsOnceAndWarnsIfTheCoreDidNotTake() {
        let after = ["OPENBLAS_CORETYPE": "Cooperlake", "AVMAE_BLAS_CORE_DETECTED": "Prescott"]
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("Cooperlake"), environment: after),
                       .run(.corrected(from: "Prescott")))
        guard case .warn(.corrected(from: "Prescott"), let message) =
                BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("Prescott"), environment: after) else {
            return XCTFail("a second re-exec would loop")
        }
        XCTAssertTrue(message.contains("OpenBLAS runs its Prescott kernels although avmae-serve set OPENBLAS_CORETYPE=Cooperlake"), message)
    }

    func testUserChoiceIsRespectedUnlessSlowerOrIllegal() {
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: zen4, inUse: OpenBLASCore("Cooperlake"),
                                               environment: ["OPENBLAS_CORETYPE": "Cooperlake"]), .run(.user))
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: zen4, inUse: OpenBLASCore("Zen"),
                                               environment: ["OPENBLAS_CORETYPE": "Zen"]), .run(.user))
        guard case .refuse(let slow) = BLASKernelCheck.verdict(cpu: intel207, inUse: OpenBLASCore("Haswell"),
                                                               environment: ["OPENBLAS_CORETYPE": "Haswell"]) else {
            return XCTFail("AVX2 kernels on an AVX-512 BF16 Intel CPU run at a third of its speed")
        }
        XCTAssertEqual(slow, """
            OPENBLAS_CORETYPE=Haswell makes OpenBLAS run its Haswell kernels (avx2), but this CPU (Intel(R) Xeon(R) \
            Processor, family 6 model 207) has avx512_bf16: its best kernel is Cooperlake, several times faster at the \
            model's products. Unset OPENBLAS_CORETYPE to let avmae-serve choose, or set AVMAE_ALLOW_SLOW_BLAS=1 to run \
            with it anyway.
            """)
        guard case .warn(.user, let allowed) = BLASKernelCheck.verdict(
            cpu: intel207, inUse: OpenBLASCore("Prescott"),
            environment: ["OPENBLAS_CORETYPE": "Prescott", "AVMAE_ALLOW_SLOW_BLAS": "1"]) else {
            return XCTFail("AVMAE_ALLOW_SLOW_BLAS=1 runs the user's choice")
        }
        XCTAssertTrue(allowed.hasSuffix("Running with it because AVMAE_ALLOW_SLOW_BLAS=1."), allowed)
        guard case .refuse(let illegal) = BLASKernelCheck.verdict(cpu: haswell, inUse: OpenBLASCore("SkylakeX"),
                                                                  environment: ["OPENBLAS_CORETYPE": "SkylakeX"]) else {
            return XCTFail("AVX-512 kernels on an AVX2 CPU stop on an illegal instruction")
        }
        XCTAssertTrue(illegal.contains("which need avx512, but this CPU"), illegal)
    }

    func testTestHookTreatsTheVariableAsOpenBLASsOwnPick() {
        XCTAssertEqual(BLASKernelCheck.verdict(cpu: zen4, inUse: OpenBLASCore("Prescott"),
                                               environment: ["OPENBLAS_CORETYPE": "Prescott", "AVMAE_TEST_BLAS_FALLBACK": "1"]),
                       .reexec(OpenBLASCore("Haswell")))
    }
}
