import AVMAE
import CCPU
import Foundation

/// This machine's measured fp32 multiply-add peak on the benchmark's threads: the ceiling every bench figure
/// is also divided by. A same-run sgemm baseline cannot be the only yardstick, because when OpenBLAS runs the
/// wrong kernel the baseline is as slow as the model and their ratio still looks fine.
struct FMAPeak {
    let gflops: Double
    /// Width of the vectors that reached it (512, 256 or 128 bits).
    let vectorBits: Int

    /// Best of a few rounds at each vector width the CPU runs: noise from other processes only ever slows a
    /// round down. AVX-512 is tried beside AVX2 because some cores split 512-bit operations into two halves
    /// (AMD Zen 4) or have a single 512-bit FMA port, and then 256 bits reach the same peak or more.
    static func measure(threads: Int, cpu: CPUFeatures) -> FMAPeak {
        var widths = [128]
        if cpu.isa >= .avx2 { widths = [256] }
        if cpu.features.contains(.avx512f) { widths.append(512) }
        let best = widths.map { bits in (bits, (0..<5).map { _ in rate(bits: bits, threads: threads) }.max()!) }
            .max { $0.1 < $1.1 }!
        return FMAPeak(gflops: best.1 / 1e9, vectorBits: best.0)
    }

    /// FLOP/s of `threads` threads each running the loop at once, timed from release to the last one done.
    private static func rate(bits: Int, threads: Int) -> Double {
        // ~0.1 s per round: long enough to hide thread start-up, short enough for five rounds per width.
        let probe = 200_000
        let t0 = Date()
        let probeFlops = avmae_fma_loop(Int32(bits), probe)
        let iterations = max(probe, Int(Double(probe) * 0.1 / max(Date().timeIntervalSince(t0), 1e-6)))
        let flopsPerCall = probeFlops / Double(probe) * Double(iterations)

        let gate = DispatchSemaphore(value: 0), done = DispatchGroup()
        for _ in 0..<threads {
            done.enter()
            Thread.detachNewThread {
                gate.wait()
                _ = avmae_fma_loop(Int32(bits), iterations)
                done.leave()
            }
        }
        let start = Date()
        for _ in 0..<threads { gate.signal() }
        done.wait()
        return flopsPerCall * Double(threads) / Date().timeIntervalSince(start)
    }
}
