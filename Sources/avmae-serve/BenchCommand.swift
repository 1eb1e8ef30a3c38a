import ArgumentParser
import AVMAE
import Foundation

/// Times a full-size ViT-Large encoder (random weights, built in a temp folder and memory-mapped like any
/// bundle) against cblas_sgemm on the encoder's own shapes, measured in the same run: the machines are shared
/// and noisy, so only the ratio is comparable across runs. Both are also divided by the machine's measured FMA
/// peak, which a wrong BLAS kernel cannot slow down alongside them.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the encoder at full ViT-Large size against this machine's sgemm."
    )

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "OpenBLAS threads.")
    var blasThreads: Int = 2

    @Option(help: "Timed runs per case (median reported), after one warm-up.")
    var runs: Int = 3

    @Option(help: "Encoder layers (24 for ViT-Large; fewer for a quick look).")
    var layers: Int = 24

    @Option(help: "Cases: audio1 (496 tokens), audio4 (4 x 496), video1 (1568 tokens).")
    var cases: [String] = ["audio1", "audio4", "video1"]

    @Option(help: "Precision to run (repeatable): fp32, int8, bf16. Default: every one this CPU runs fast, interleaved.")
    var precision: [Precision] = []

    @Option(help: "Also time decoding every clip in this folder (bench/decode.sh makes them), as a share of audio1.")
    var decode: String?

    @Option(help: "Only time decoding in a sandboxed worker against in-process decoding, for every clip in this folder.")
    var decodeIsolation: String?

    struct CaseResult: Codable {
        var name: String, modality: String, tokens: Int, batch: Int
        /// fp32 | int8 | bf16, and the engine that ran it, e.g. "int8 on oneDNN 2.6.3 (brg:avx512_core_vnni)"
        var precision: String, engine: String
        /// Low precision only: the worst cosine, over the batch, between its pooled embedding and fp32's.
        var cosineToFp32: Double?
        /// Weights prepared at load outside the bundle's mapping (oneDNN's int8/bf16 copies).
        var preparedWeightsMiB: Double
        var seconds: Double, gflop: Double, gflops: Double
        /// sgemm alone on every product the encoder issues (attention's small per-head ones included)
        var sgemmSeconds: Double, sgemmGflops: Double, ratio: Double
        /// sgemm on the encoder's big linear shapes only (the machine's best sustained rate)
        var sgemmLinearGflops: Double, ratioToLinear: Double
        var rssBeforeMiB: Double, rssAfterMiB: Double, weightsMiB: Double
        /// Model GFLOP/s and sgemm GFLOP/s over the same-run fp32 FMA peak of these threads.
        var ratioToPeak: Double, sgemmRatioToPeak: Double
    }

    func run() throws {
        if let folder = decodeIsolation {
            return try runIsolation(folder)
        }
        let kernel = try KernelCheck.run()
        BLAS.threads = blasThreads
        KernelCheck.report(kernel)
        let compute = kernel.info()
        let peak = FMAPeak.measure(threads: blasThreads, cpu: compute.cpu)
        if !json {
            print(String(format: "FMA peak %.1f GFLOP/s (%d threads, %d-bit vectors)", peak.gflops, blasThreads, peak.vectorBits))
        }
        let precisions = precision.isEmpty ? ComputeEngine.availablePrecisions : precision
        do {
            for p in precisions { try ComputeEngine.checkAvailable(p) }
        } catch let error as ComputeError {
            throw ValidationError(error.description)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var results = [CaseResult]()
        for modality in [Modality.audio, .video] {
            let wanted = cases.filter { $0.hasPrefix(modality.rawValue) }
            guard !wanted.isEmpty else { continue }
            var config = ModelConfig(name: "bench-vit-large-\(modality.rawValue)", kind: .pretrained, encoder: .separate,
                                     modalities: [modality], hiddenSize: 1024, numHeads: 16, mlpDim: 4096, numLayers: layers)
            config.frames = 16
            if !json { print("building \(config.name): \(layers) layers, random weights ...") }
            try DemoBundle.write(to: dir, config: config, seed: 1)
            // fp32 is always loaded: it is the reference every low precision's cosine is measured against.
            let reference = try Model(bundle: dir)
            let models = try precisions.map { $0 == .fp32 ? reference : try Model(bundle: dir, precision: $0) }
            for name in wanted {
                guard let batch = Int(name.dropFirst(modality.rawValue.count)), batch > 0 else {
                    throw ValidationError("unknown case \(name): use audioN or videoN")
                }
                let measured = try measure(name, models: models, reference: reference, modality: modality, batch: batch,
                                           peak: peak)
                results += measured
                if !json { measured.forEach { print(format($0)) } }
            }
            try FileManager.default.removeItem(at: dir)
        }
        let inference = results.first { $0.name == "audio1" }?.seconds
        let decodeRows = try decode.map { try DecodeBench(folder: URL(fileURLWithPath: $0), runs: max(runs, 3)).run() } ?? []
        if !json {
            for row in decodeRows {
                let share = inference.map { String(format: " = %.1f%% of one audio1 inference", row.milliseconds / 10 / $0) } ?? ""
                print(String(format: "decode %@ | %@: %.1f ms", row.clip, row.configuration, row.milliseconds) + share)
            }
        }
        if json {
            let report: [String: Any] = [
                "blas": BLAS.configuration, "core": compute.blasCore, "coreChosenBy": "\(compute.blasCoreOrigin)",
                "threads": blasThreads, "cpu": compute.cpu.modelName, "vendor": compute.cpu.vendor,
                "cpuFamily": compute.cpu.family, "cpuModel": compute.cpu.model, "isa": compute.cpu.isa.rawValue,
                "features": compute.cpu.features.sorted().map(\.rawValue), "backend": compute.backend,
                "precisions": precisions.map(\.rawValue), "peakGflops": peak.gflops, "peakVectorBits": peak.vectorBits,
                "cases": try results.map { try JSONSerialization.jsonObject(with: JSONEncoder().encode($0)) },
                "decode": try decodeRows.map { try JSONSerialization.jsonObject(with: JSONEncoder().encode($0)) },
            ]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(BLAS.configuration), core \(compute.blasCore), \(blasThreads) threads, \(compute.cpu.modelName) "
                  + "(family \(compute.cpu.family) model \(compute.cpu.model), \(compute.cpu.isa.rawValue))")
        }
    }

    private func runIsolation(_ folder: String) throws {
        let rows = try IsolationBench(folder: URL(fileURLWithPath: folder), runs: max(runs, 3)).run()
        if json {
            print(String(decoding: try JSONEncoder().encode(rows), as: UTF8.self))
            return
        }
        for row in rows {
            print(String(format: "%@ | %@: wall in-process %.2f ms, worker %.2f ms, added %.2f ms = %.1f%%; "
                             + "CPU in-process %.2f ms, daemon + worker %.2f ms, added %.2f ms = %.1f%%", row.clip,
                         row.request, row.inProcessMs, row.workerMs, row.addedMs, row.addedShare * 100,
                         row.inProcessCpuMs, row.workerCpuMs, row.addedCpuMs, row.addedCpuShare * 100))
        }
    }

    /// Every model on the same input, interleaved run by run with the sgemm baselines, so a noisy neighbour
    /// slows them all alike.
    private func measure(_ name: String, models: [Model], reference: Model, modality: Modality, batch: Int,
                         peak: FMAPeak) throws -> [CaseResult] {
        let c = reference.config
        var rng = UInt64(42)
        func noise(_ count: Int) -> [Float] {
            (0..<count).map { _ in rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Float(rng >> 40) / Float(1 << 24) * 2 - 1 }
        }
        let input: ModelInput, tokens: Int, patch: Int
        if modality == .audio {
            input = ModelInput(spectrogram: Tensor(shape: [batch, c.spectrogramFrames, c.frontend.melBins],
                                                   data: noise(batch * c.spectrogramFrames * c.frontend.melBins)))
            (tokens, patch) = (c.audioTokens, 256)
        } else {
            input = ModelInput(frames: .floats(Tensor(shape: [batch, c.frames, 224, 224, 3], data: noise(batch * c.frames * 224 * 224 * 3))))
            (tokens, patch) = (c.videoTokens, 1536)
        }
        let rssBefore = Memory.residentMiB()
        let shapes = Cost.encoderShapes(config: c, tokens: tokens, batch: batch, layers: c.numLayers, patchSize: patch)
        let all = BLAS.Baseline(shapes), linear = BLAS.Baseline(Array(shapes[1...3]))
        let workspaces = models.map { $0.makeWorkspace() }
        // The warm-up runs give the outputs the cosines compare.
        let fp32Pooled = pooled(try reference.run(input, workspace: reference.makeWorkspace()))
        let cosines = try zip(models, workspaces).map { model, ws in
            model.compute.precision == .fp32 ? nil : worstCosine(pooled(try model.run(input, workspace: ws)), fp32Pooled)
        }
        _ = all.time()
        var times = [[Double]](repeating: [], count: models.count), sgemmTimes = [Double](), linearTimes = [Double]()
        for _ in 0..<runs {
            for (i, (model, ws)) in zip(models, workspaces).enumerated() {
                let t = Date()
                _ = try model.run(input, workspace: ws)
                times[i].append(Date().timeIntervalSince(t))
            }
            sgemmTimes.append(all.time())
            linearTimes.append(linear.time())
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let sgemm = median(sgemmTimes), flops = all.flops
        let linearRate = linear.flops / median(linearTimes) / 1e9
        let rssAfter = Memory.residentMiB()
        return models.indices.map { i in
            let seconds = median(times[i]), model = models[i]
            return CaseResult(name: name, modality: modality.rawValue, tokens: tokens, batch: batch,
                              precision: model.compute.precision.rawValue, engine: "\(model.compute)",
                              cosineToFp32: cosines[i], preparedWeightsMiB: Double(model.preparedWeightBytes) / 1_048_576,
                              seconds: seconds, gflop: flops / 1e9, gflops: flops / seconds / 1e9, sgemmSeconds: sgemm,
                              sgemmGflops: flops / sgemm / 1e9, ratio: sgemm / seconds, sgemmLinearGflops: linearRate,
                              ratioToLinear: flops / seconds / 1e9 / linearRate, rssBeforeMiB: rssBefore,
                              rssAfterMiB: rssAfter, weightsMiB: Double(model.parameterCount) * 4 / 1_048_576,
                              ratioToPeak: flops / seconds / 1e9 / peak.gflops, sgemmRatioToPeak: flops / sgemm / 1e9 / peak.gflops)
        }
    }

    /// Each batch item's encoder tokens, mean-pooled: (batch) x (D).
    private func pooled(_ output: ModelOutput) -> [[Double]] {
        guard let t = output.audioTokens ?? output.videoTokens else { return [] }
        let (b, n, d) = (t.shape[0], t.shape[1], t.shape[2])
        return (0..<b).map { item in
            var sum = [Double](repeating: 0, count: d)
            for r in 0..<n { for j in 0..<d { sum[j] += Double(t.data[(item * n + r) * d + j]) } }
            return sum
        }
    }

    private func worstCosine(_ a: [[Double]], _ b: [[Double]]) -> Double {
        zip(a, b).map { x, y in
            let dot = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
            let nx = x.reduce(0) { $0 + $1 * $1 }.squareRoot(), ny = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return dot / (nx * ny)
        }.min() ?? 1
    }

    private func format(_ r: CaseResult) -> String {
        let cosine = r.cosineToFp32.map { String(format: " | cosine to fp32 %.6f", $0) } ?? ""
        return String(format: "%-7@ %-4@ %5d tokens x %d: %7.3f s  %7.1f GFLOP  %6.1f GFLOP/s | sgemm alone %7.3f s  %6.1f GFLOP/s | ratio %.3f | linear-shape sgemm %6.1f GFLOP/s, ratio %.3f | of FMA peak: model %.2f, sgemm %.2f | RSS %.0f -> %.0f MiB (weights %.0f MiB)",
               r.name as NSString, r.precision as NSString, r.tokens, r.batch, r.seconds, r.gflop, r.gflops, r.sgemmSeconds, r.sgemmGflops, r.ratio, r.sgemmLinearGflops, r.ratioToLinear,
               r.ratioToPeak, r.sgemmRatioToPeak, r.rssBeforeMiB, r.rssAfterMiB, r.weightsMiB) + cosine + " | \(r.engine)"
    }
}

enum Memory {
    /// VmRSS of this process in MiB (from /proc/self/status).
    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}
