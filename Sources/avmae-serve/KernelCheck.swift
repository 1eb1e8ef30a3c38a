import AVMAE
import Foundation

/// The first thing every command that computes (serve, run, bench) does: check that OpenBLAS loaded the kernel
/// this CPU should run, and if OpenBLAS chose worse by itself, execute this binary again with OPENBLAS_CORETYPE
/// set (the library reads it only when it loads). Same pid, same arguments, same inherited sockets, so systemd's
/// notify and socket activation see one process. BLASKernelCheck decides; this carries the decision out.
enum KernelCheck {
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// The core that runs, who chose it, and a warning to show when it is not the best.
    struct Outcome {
        let cpu: CPUFeatures
        let core: String
        let origin: BLASKernelCheck.Origin
        let warning: String?

        /// Call after setting BLAS.threads. fp32 runs on OpenBLAS, int8 and bf16 on oneDNN.
        func info(precision: Precision = .fp32) -> ComputeInfo {
            ComputeInfo(cpu: cpu, blasCore: core, blasCoreOrigin: origin,
                        backend: precision == .fp32 ? "openblas" : "onednn", precision: precision.rawValue, threads: BLAS.threads)
        }
    }

    /// Returns what runs, re-executes (never returning), or throws `Refusal`. One exec carries every variable
    /// the libraries read at load: the BLAS kernel, and libgomp's wait policy (`OpenMPWaitPolicy`).
    static func run() throws -> Outcome {
        let cpu = CPUFeatures.detect()
        let inUse = BLAS.coreName
        let setsWaitPolicy = OpenMPWaitPolicy.passiveUnlessChosen()
        switch BLASKernelCheck.verdict(cpu: cpu, inUse: OpenBLASCore(inUse), environment: ProcessInfo.processInfo.environment) {
        case .run(let origin):
            if setsWaitPolicy { restart() }
            return Outcome(cpu: cpu, core: inUse, origin: origin, warning: nil)
        case .warn(let origin, let message):
            if setsWaitPolicy { restart() }
            return Outcome(cpu: cpu, core: inUse, origin: origin, warning: message)
        case .refuse(let message):
            throw Refusal(description: message)
        case .reexec(let core):
            setenv(BLASKernelCheck.coreTypeVariable, core.name, 1)
            setenv(BLASKernelCheck.detectedVariable, inUse, 1)
            unsetenv(BLASKernelCheck.simulateFallbackVariable)
            restart()
            // Only reached when exec failed (no /proc, say): run on, but not silently.
            return Outcome(cpu: cpu, core: inUse, origin: .detected, warning: """
                OpenBLAS picked its \(inUse) kernels on a CPU whose best is \(core), and restarting with \
                \(BLASKernelCheck.coreTypeVariable)=\(core) failed (\(String(cString: strerror(errno)))): inference \
                runs slower than this machine can. Set \(BLASKernelCheck.coreTypeVariable)=\(core) in the environment.
                """)
        }
    }

    /// Same pid, arguments and inherited descriptors, with the environment set above. Returns only if exec failed.
    private static func restart() {
        fflush(stdout)
        fflush(stderr)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// For commands without a logger (run, bench): the compute line and any warning on stderr, so stdout stays
    /// the command's output (bench --json).
    static func report(_ outcome: Outcome, precision: Precision = .fp32) {
        FileHandle.standardError.write(Data("avmae-serve compute: \(outcome.info(precision: precision).summary)\n".utf8))
        if let warning = outcome.warning { FileHandle.standardError.write(Data("avmae-serve WARNING: \(warning)\n".utf8)) }
    }
}
