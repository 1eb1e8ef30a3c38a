import Foundation

/// libgomp, the thread pool under oneDNN (the int8/bf16 engine), reads OMP_WAIT_POLICY once, when it loads,
/// before main runs. Its default keeps idle workers spinning after each product; on a 2-core machine they then
/// take the cores OpenBLAS needs for attention between oneDNN products. Measured on AMD EPYC Zen 4 (family 25
/// model 17), 2 threads, 8-layer ViT-L int8, 496 tokens, shared machine, two interleaved pairs: 2.30 and 3.01 s
/// spinning, 1.57 and 1.90 s with PASSIVE, and less CPU time. So unless the user chose a policy, the process
/// sets PASSIVE; `KernelCheck` re-executes the process once with it, with the BLAS kernel's variable if needed.
enum OpenMPWaitPolicy {
    /// Sets PASSIVE unless the user chose a policy; true when the process must restart for libgomp to see it.
    static func passiveUnlessChosen() -> Bool {
        guard ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] == nil else { return false }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        return true
    }
}
