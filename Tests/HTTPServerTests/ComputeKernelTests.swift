import AVMAE
import Foundation
import XCTest

/// The real binary never runs a fallback BLAS kernel silently: a forced slow kernel is refused (or, when allowed,
/// warned about), OpenBLAS's own wrong pick is corrected by re-executing with OPENBLAS_CORETYPE set, and what
/// runs is reported in the log, on /metrics and in `bench --json`.
final class ComputeKernelTests: XCTestCase {
    let cpu = CPUFeatures.detect()
    var best: OpenBLASCore { OpenBLASCore.best(for: cpu) }

    /// The tests force Prescott (SSE3) as the slow kernel, which is only slower than the best on a CPU with AVX.
    override func setUpWithError() throws {
        guard let level = best.isa, level >= .avx else {
            throw XCTSkip("NOT RUN: this CPU's best OpenBLAS core is \(best), so Prescott is not a fallback here")
        }
    }

    func testUserForcedSlowKernelIsRefusedWithTheWayOut() throws {
        let bundle = try demoBundle()
        // Every command that computes checks first; `run` and `bench` would otherwise fail or take seconds.
        for command in [["serve", "--bundle", bundle.path, "--host", "127.0.0.1", "--port", "0"],
                        ["run", "--bundle", bundle.path, "--spectrogram", "absent.npy", "--out", "absent.safetensors"],
                        ["bench", "--layers", "1", "--runs", "1", "--cases", "audio1"]] {
            let (status, output) = try runBinary(command, environment: ["OPENBLAS_CORETYPE": "Prescott"])
            XCTAssertEqual(status, 1, "\(command[0]): \(output)")
            XCTAssertTrue(output.hasPrefix("Error: OPENBLAS_CORETYPE=Prescott makes OpenBLAS run its Prescott kernels (sse3)"), output)
            XCTAssertTrue(output.contains("has \(cpu.isa.rawValue): its best kernel is \(best)"), output)
            XCTAssertTrue(output.contains("Unset OPENBLAS_CORETYPE"), output)
            XCTAssertTrue(output.contains("AVMAE_ALLOW_SLOW_BLAS=1"), output)
        }
    }

    func testUserForcedSlowKernelRunsWhenAllowedAndSaysSo() throws {
        let daemon = try RunningDaemon(settings: ["blas_threads": "1"],
                                       environment: ["OPENBLAS_CORETYPE": "Prescott", "AVMAE_ALLOW_SLOW_BLAS": "1"])
        XCTAssertEqual(try computeInfo(daemon), ["isa": cpu.isa.rawValue, "blas_core": "Prescott", "backend": "openblas",
                                                 "precision": "fp32", "threads": "1"])
        XCTAssertTrue(daemon.log.contains("slow BLAS kernel"), daemon.log)
        XCTAssertTrue(daemon.log.contains("Running with it because AVMAE_ALLOW_SLOW_BLAS=1"), daemon.log)
        XCTAssertTrue(daemon.log.contains("blas_core_chosen_by=user (OPENBLAS_CORETYPE)"), daemon.log)
    }

    /// AVMAE_TEST_BLAS_FALLBACK makes the forced Prescott look like OpenBLAS's own detection, which is what
    /// OpenBLAS 0.3.21 does on Intel family 6 model 207; the daemon must re-execute itself onto the best core.
    func testFallbackKernelIsCorrectedByReexecutingInTheSameProcess() throws {
        let daemon = try RunningDaemon(settings: ["blas_threads": "2"],
                                       environment: ["OPENBLAS_CORETYPE": "Prescott", "AVMAE_TEST_BLAS_FALLBACK": "1"])
        XCTAssertEqual(try computeInfo(daemon)["blas_core"], best.name)
        XCTAssertEqual(try computeInfo(daemon)["threads"], "2")
        XCTAssertTrue(daemon.log.contains("blas_core_chosen_by=avmae-serve (openblas picked Prescott)"), daemon.log)
        XCTAssertFalse(daemon.log.contains("slow BLAS kernel"), daemon.log)
        // exec kept the pid the test started, now with the variables the correction set.
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(daemon.process.processIdentifier)/environ"))
        let variables = Set(environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        XCTAssertTrue(variables.contains("OPENBLAS_CORETYPE=\(best.name)"), "\(variables.sorted())")
        XCTAssertTrue(variables.contains("AVMAE_BLAS_CORE_DETECTED=Prescott"))
        XCTAssertFalse(variables.contains { $0.hasPrefix("AVMAE_TEST_BLAS_FALLBACK=") })
    }

    func testDefaultStartRunsTheBestCoreAndSaysWhatRuns() throws {
        let daemon = try RunningDaemon(settings: ["blas_threads": "1"], environment: ["OPENBLAS_CORETYPE": ""])
        XCTAssertEqual(try computeInfo(daemon), ["isa": cpu.isa.rawValue, "blas_core": best.name, "backend": "openblas",
                                                 "precision": "fp32", "threads": "1"])
        let line = try XCTUnwrap(daemon.log.split(separator: "\n").first { $0.contains("compute") && $0.contains("isa=") })
        for field in ["isa=\(cpu.isa.rawValue)", "blas_core=\(best.name)", "backend=openblas", "precision=fp32",
                      "threads=1", "family=\(cpu.family)", "model=\(cpu.model)"] {
            XCTAssertTrue(line.contains(field), "\(field) missing from: \(line)")
        }
    }

    func testBenchJSONReportsTheMachineAndEachCaseAgainstThePeak() throws {
        let (status, output) = try runBinary(
            ["bench", "--json", "--layers", "1", "--runs", "1", "--cases", "audio1", "--blas-threads", "1", "--precision", "fp32"],
            environment: ["OPENBLAS_CORETYPE": "Prescott", "AVMAE_TEST_BLAS_FALLBACK": "1"], stderrToo: false)
        XCTAssertEqual(status, 0, output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
        XCTAssertEqual(report["cpu"] as? String, try cpuinfo("model name"))
        XCTAssertEqual(report["cpuFamily"] as? Int, Int(try cpuinfo("cpu family")))
        XCTAssertEqual(report["cpuModel"] as? Int, Int(try cpuinfo("model")))
        XCTAssertEqual(report["isa"] as? String, cpu.isa.rawValue)
        XCTAssertEqual(report["core"] as? String, best.name)
        XCTAssertEqual(report["coreChosenBy"] as? String, "avmae-serve (openblas picked Prescott)")
        XCTAssertEqual(report["precisions"] as? [String], ["fp32"])
        XCTAssertEqual(report["backend"] as? String, "openblas")
        XCTAssertEqual(report["threads"] as? Int, 1)
        let peak = try XCTUnwrap(report["peakGflops"] as? Double)
        // One core of any x86-64 CPU that has AVX does 8 to 64 fp32 FLOP per cycle at 1 to 6 GHz.
        XCTAssertGreaterThan(peak, 8)
        XCTAssertLessThan(peak, 400)
        let cases = try XCTUnwrap(report["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.map { $0["name"] as? String }, ["audio1"])
        let audio = cases[0]
        XCTAssertEqual(audio["precision"] as? String, "fp32")
        XCTAssertEqual(audio["engine"] as? String, "fp32 on OpenBLAS")
        let gflops = try XCTUnwrap(audio["gflops"] as? Double), sgemm = try XCTUnwrap(audio["sgemmGflops"] as? Double)
        XCTAssertEqual(try XCTUnwrap(audio["ratioToPeak"] as? Double), gflops / peak, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(audio["sgemmRatioToPeak"] as? Double), sgemm / peak, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(audio["ratio"] as? Double), gflops / sgemm, accuracy: 1e-9)
    }

    // MARK: - helpers

    private var scratch: URL?

    override func tearDownWithError() throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func demoBundle() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-kernel-\(UUID().uuidString)")
        scratch = dir
        try DemoBundle.write(to: dir, config: DemoBundle.config(), seed: 7)
        return dir
    }

    /// Runs the binary to its end (bounded by `timeout`); returns its exit status and stdout (+ stderr).
    private func runBinary(_ arguments: [String], environment: [String: String], stderrToo: Bool = true,
                           timeout: Double = 300) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try RunningDaemon.binary()
        process.arguments = arguments
        process.environment = RunningDaemon.environment(adding: environment)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = stderrToo ? output : FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            XCTFail("avmae-serve \(arguments.joined(separator: " ")) did not end within \(timeout) s")
        }
        return (process.terminationStatus, text)
    }

    /// Labels of the one `avmae_compute_info` sample on /metrics, whose value must be 1.
    private func computeInfo(_ daemon: RunningDaemon) throws -> [String: String] {
        let text = String(decoding: try Curl.run(port: daemon.port, path: "/metrics").body, as: UTF8.self)
        let samples = text.split(separator: "\n").filter { $0.hasPrefix("avmae_compute_info{") }
        XCTAssertEqual(samples.count, 1, text)
        let sample = try XCTUnwrap(samples.first)
        XCTAssertTrue(sample.hasSuffix("} 1.0") || sample.hasSuffix("} 1"), String(sample))
        let inner = sample.drop { $0 != "{" }.dropFirst().prefix { $0 != "}" }
        return Dictionary(uniqueKeysWithValues: inner.split(separator: ",").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), String(parts[1].dropFirst().dropLast()))
        })
    }

    /// A field of /proc/cpuinfo's first processor, the way lscpu reads it.
    private func cpuinfo(_ key: String) throws -> String {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try XCTUnwrap(text.split(separator: "\n").first { $0.split(separator: ":")[0].trimmingCharacters(in: .whitespaces) == key })
        return line.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
    }
}
