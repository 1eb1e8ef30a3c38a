/// Decides, at start-up of every command that computes, whether the OpenBLAS kernel in use is the one this CPU
/// should run. OpenBLAS reads `OPENBLAS_CORETYPE` only when the library loads, so a wrong pick is corrected by
/// executing the process again with it set; the executable carries that out. Pure: the CPU, the core in use
/// and the environment come in, a verdict goes out.
public enum BLASKernelCheck {
    /// OpenBLAS's own variable: read once, when the library loads.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Set on the re-executed process to the core OpenBLAS had picked; its presence also stops a second re-exec.
    public static let detectedVariable = "AVMAE_BLAS_CORE_DETECTED"
    /// `1` lets a user-set OPENBLAS_CORETYPE below the CPU's best run anyway (with a warning).
    public static let allowSlowVariable = "AVMAE_ALLOW_SLOW_BLAS"
    /// Test hook, `1`: treat OPENBLAS_CORETYPE as OpenBLAS's own (wrong) detection rather than a user's choice,
    /// so the correction path runs on a machine whose OpenBLAS picks the right core by itself.
    public static let simulateFallbackVariable = "AVMAE_TEST_BLAS_FALLBACK"

    /// Who chose the core that runs.
    public enum Origin: Equatable, Sendable, CustomStringConvertible {
        /// OpenBLAS's detection, and it is the best core for this CPU.
        case detected
        /// OPENBLAS_CORETYPE set by the user.
        case user
        /// avmae-serve re-executed with OPENBLAS_CORETYPE set, replacing OpenBLAS's pick.
        case corrected(from: String)

        public var description: String {
            switch self {
            case .detected: "openblas"
            case .user: "user (\(coreTypeVariable))"
            case .corrected(let from): "avmae-serve (openblas picked \(from))"
            }
        }
    }

    public enum Verdict: Equatable, Sendable {
        /// The core in use is right (or the user's acceptable choice).
        case run(Origin)
        /// Run, but say loudly why it is slower than it could be.
        case warn(Origin, String)
        /// Execute again with OPENBLAS_CORETYPE set to this core.
        case reexec(OpenBLASCore)
        /// Do not start; the message says what to change.
        case refuse(String)
    }

    public static func verdict(cpu: CPUFeatures, inUse: OpenBLASCore, environment: [String: String]) -> Verdict {
        let best = OpenBLASCore.best(for: cpu)
        let forced = environment[coreTypeVariable].flatMap { $0.isEmpty ? nil : $0 }
        let machine = "this CPU (\(cpu.modelName), family \(cpu.family) model \(cpu.model)) has \(cpu.isa.rawValue)"

        if let detected = environment[detectedVariable] {
            guard inUse == best else {
                return .warn(.corrected(from: detected), """
                    OpenBLAS runs its \(inUse) kernels although avmae-serve set \(coreTypeVariable)=\(best) for it; \
                    \(machine). This OpenBLAS build may lack that core: install a DYNAMIC_ARCH OpenBLAS that has it.
                    """)
            }
            return .run(.corrected(from: detected))
        }
        if let forced, environment[simulateFallbackVariable] != "1" {
            guard let level = inUse.isa else { return .run(.user) }
            if level > cpu.isa {
                return .refuse("""
                    \(coreTypeVariable)=\(forced) selects OpenBLAS's \(inUse) kernels, which need \(level.rawValue), \
                    but \(machine) only: they would stop on an illegal instruction. Unset \(coreTypeVariable) to let \
                    avmae-serve choose (\(best) here).
                    """)
            }
            guard let bestLevel = best.isa, level < bestLevel else { return .run(.user) }
            let slow = """
                \(coreTypeVariable)=\(forced) makes OpenBLAS run its \(inUse) kernels (\(level.rawValue)), but \
                \(machine): its best kernel is \(best), several times faster at the model's products.
                """
            guard environment[allowSlowVariable] == "1" else {
                return .refuse(slow + " Unset \(coreTypeVariable) to let avmae-serve choose, or set \(allowSlowVariable)=1 to run with it anyway.")
            }
            return .warn(.user, slow + " Running with it because \(allowSlowVariable)=1.")
        }
        // A core this table does not know comes from an OpenBLAS newer than the table: trust its choice.
        if inUse == best || inUse.isa == nil { return .run(.detected) }
        return .reexec(best)
    }
}
