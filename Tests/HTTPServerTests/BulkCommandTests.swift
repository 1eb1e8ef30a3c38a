import AVMAE
import Foundation
import XCTest

/// `avmae-serve embed` and `classify` over folders: the real binary on the committed fixtures plus generated bad
/// files, checked against results.jsonl, the .npy files, and the answers of a real daemon serving the same bundle.
final class BulkCommandTests: SharedDaemonTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("avmae-bulk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// inputs/: tone.wav, clip.mp4, long.flac, tiny_1x1.mkv (no usable stream), sub/garbage.mp4 (not media).
    private func makeInputs() throws -> URL {
        let inputs = scratch.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: inputs.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for fixture in [Fixture.tone, Fixture.clip, Fixture.long, Fixture.tiny] {
            try FileManager.default.copyItem(at: fixture, to: inputs.appendingPathComponent(fixture.lastPathComponent))
        }
        try FileManager.default.moveItem(at: try Fixture.garbage(4000),
                                         to: inputs.appendingPathComponent("sub/garbage.mp4"))
        return inputs
    }

    private func records(_ output: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: output.appendingPathComponent("results.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], String($0))
        }
    }

    private func byPath(_ records: [[String: Any]]) -> [String: [String: Any]] {
        Dictionary(records.map { ($0["path"] as? String ?? "", $0) }, uniquingKeysWith: { $1 })
    }

    private func vector(_ output: URL, _ file: Any?) throws -> [Float] {
        let name = try XCTUnwrap((file as? [String: Any])?["file"] as? String)
        guard case .float(let tensor) = try NumpyArray.read(output.appendingPathComponent(name)) else {
            throw XCTSkip("unreachable: bulk writes float32")
        }
        return tensor.data
    }

    func testEmbedWritesOneLinePerFileAndABadFileDoesNotStopTheRun() throws {
        let inputs = try makeInputs()
        let output = scratch.appendingPathComponent("out")
        let run = try BulkProcess.run(["embed", inputs.path, "--output", output.path, "--bundle", daemon.bundle.path,
                                       "--windows"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.summary["ok"] as? Int, 3, run.stderr)
        XCTAssertEqual(run.summary["failed"] as? Int, 2)
        XCTAssertEqual(run.summary["retryable"] as? Int, 0)

        let records = try records(output)
        XCTAssertEqual(records.count, 5)
        let lines = byPath(records)
        XCTAssertEqual(Set(lines.keys), ["tone.wav", "clip.mp4", "long.flac", "tiny_1x1.mkv", "sub/garbage.mp4"])
        let garbage = try XCTUnwrap(lines["sub/garbage.mp4"])
        XCTAssertEqual(garbage["status"] as? String, "error")
        XCTAssertEqual((garbage["error"] as? [String: Any])?["code"] as? String, "undecodable_clip")
        XCTAssertEqual(garbage["size"] as? Int, 4000)
        XCTAssertEqual((lines["tiny_1x1.mkv"]?["error"] as? [String: Any])?["code"] as? String, "modality_unavailable")

        let long = try XCTUnwrap(lines["long.flac"])
        XCTAssertEqual(long["status"] as? String, "ok")
        XCTAssertEqual(long["windows_used"] as? Int, 3)
        XCTAssertEqual(long["window_starts"] as? [Double], [0, 10, 15])
        let windows = try XCTUnwrap((long["window_embeddings"] as? [String: Any])?["audio"] as? [String: Any])
        XCTAssertEqual(windows["shape"] as? [Int], [3, 64])
        XCTAssertEqual(try vector(output, windows).count, 3 * 64)
        let clip = try XCTUnwrap(lines["clip.mp4"])
        XCTAssertEqual(clip["modalities"] as? [String], ["audio", "video"])
        let embeddings = try XCTUnwrap(clip["embeddings"] as? [String: Any])
        XCTAssertEqual((embeddings["video"] as? [String: Any])?["file"] as? String, "embeddings/clip.mp4.video.npy")
        XCTAssertEqual(try vector(output, embeddings["video"]).count, 64)
        // The pooled embedding is the mean of the window embeddings (one window here).
        let window = try vector(output, (clip["window_embeddings"] as? [String: Any])?["video"])
        for (a, b) in zip(try vector(output, embeddings["video"]), window) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testRerunSkipsDoneFilesAndRedoesChangedOrMissingOnes() throws {
        let inputs = try makeInputs()
        let output = scratch.appendingPathComponent("out")
        let arguments = ["embed", inputs.path, "--output", output.path, "--bundle", daemon.bundle.path]
        let first = try BulkProcess.run(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try records(output).count, 5)

        // Nothing changed: every file (the two bad ones too, their errors are their own) is skipped undecoded.
        let second = try BulkProcess.run(arguments)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.summary["already_done"] as? Int, 5)
        XCTAssertEqual(second.summary["ok"] as? Int, 0)
        XCTAssertEqual(second.summary["failed"] as? Int, 0)
        XCTAssertEqual(try records(output).count, 5)

        // A newer tone.wav, a lost .npy of clip.mp4, and a torn last line from a killed run: two files again.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)],
                                              ofItemAtPath: inputs.appendingPathComponent("tone.wav").path)
        try FileManager.default.removeItem(at: output.appendingPathComponent("embeddings/clip.mp4.audio.npy"))
        let log = try FileHandle(forWritingTo: output.appendingPathComponent("results.jsonl"))
        try log.seekToEnd()
        try log.write(contentsOf: Data(#"{"path":"long.flac","size":16"#.utf8))
        try log.close()
        let third = try BulkProcess.run(arguments)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertEqual(third.summary["already_done"] as? Int, 3)
        XCTAssertEqual(third.summary["ok"] as? Int, 2)
        XCTAssertTrue(third.stderr.contains("torn line"), third.stderr)
        let records = try records(output)  // every line parses: the torn one was cut off
        XCTAssertEqual(records.count, 7)
        XCTAssertEqual(records.suffix(2).compactMap { $0["path"] as? String }.sorted(), ["clip.mp4", "tone.wav"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: output.appendingPathComponent("embeddings/clip.mp4.audio.npy").path))

        // Other weights (here, other labels: the version covers them too): the three done files are done again
        // and say which version answered; the two bad files stay settled, their errors are their own.
        let served = try XCTUnwrap(try Curl.run(port: port, path: "/v1/models").json["models"] as? [[String: Any]])
        let oldVersion = try XCTUnwrap(served.first?["version"] as? String)
        XCTAssertEqual(Set(records.compactMap { $0["model_version"] as? String }), [oldVersion])
        let otherBundle = scratch.appendingPathComponent("other-bundle")
        try FileManager.default.copyItem(at: daemon.bundle, to: otherBundle)
        let labels = otherBundle.appendingPathComponent("labels.csv")
        try (try String(contentsOf: labels, encoding: .utf8) + "\n").write(to: labels, atomically: true, encoding: .utf8)
        let fourth = try BulkProcess.run(["embed", inputs.path, "--output", output.path, "--bundle", otherBundle.path])
        XCTAssertEqual(fourth.status, 0, fourth.stderr)
        XCTAssertEqual(fourth.summary["already_done"] as? Int, 2)
        XCTAssertEqual(fourth.summary["ok"] as? Int, 3)
        let redone = try self.records(output).suffix(3)
        let newVersions = Set(redone.compactMap { $0["model_version"] as? String })
        XCTAssertEqual(newVersions.count, 1)
        XCTAssertNotEqual(newVersions.first, oldVersion)
    }

    /// Shards of one listing are disjoint, cover it, and follow FNV-1a of the relative path (re-computed here),
    /// so any machine lists the same split whatever its listing order or mount point.
    func testShardsAreDisjointCoverAllAndFollowThePathHash() throws {
        let inputs = scratch.appendingPathComponent("many")
        var expected: [String] = []
        for name in (0..<14).map({ "d\($0 % 3)/clip-\($0).wav" }) {
            let file = inputs.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("not audio \(name)".utf8).write(to: file)  // fast to refuse; sharding ignores contents
            expected.append(name)
        }
        func fnv1a(_ text: String) -> UInt64 {
            var hash: UInt64 = 0xcbf29ce484222325
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
            return hash
        }
        var seen: [String] = []
        for index in 0..<3 {
            let output = scratch.appendingPathComponent("shard-\(index)")
            let run = try BulkProcess.run(["classify", inputs.path, "--output", output.path, "--bundle",
                                           daemon.bundle.path, "--shard", "\(index)/3"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(run.summary["listed"] as? Int, 14)
            let paths = try records(output).compactMap { $0["path"] as? String }
            XCTAssertEqual(Set(paths), Set(expected.filter { fnv1a($0) % 3 == UInt64(index) }))
            seen += paths
        }
        XCTAssertEqual(seen.sorted(), expected.sorted())  // disjoint (no path twice) and complete

        let bad = try BulkProcess.run(["classify", inputs.path, "--output", scratch.path + "/x", "--shard", "3/3"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--shard"), bad.stderr)
    }

    /// The offline path answers what the server answers: the same vectors in the .npy files, the same labels,
    /// and for a bad file the same error code and message.
    func testResultsEqualTheServersAnswersForTheSameClips() throws {
        let inputs = try makeInputs()
        let embedOut = scratch.appendingPathComponent("embed")
        let embed = try BulkProcess.run(["embed", inputs.path, "--output", embedOut.path, "--bundle", daemon.bundle.path])
        XCTAssertEqual(embed.status, 0, embed.stderr)
        let embedded = byPath(try records(embedOut))
        for (name, type) in [("tone.wav", "audio/wav"), ("clip.mp4", "video/mp4")] {
            let answer = try Curl.run(port: port, path: "/v1/embed", headers: ["Content-Type": type],
                                      bodyFile: inputs.appendingPathComponent(name))
            XCTAssertEqual(answer.status, 200)
            let served = try XCTUnwrap(answer.json["embeddings"] as? [String: [Double]])
            let files = try XCTUnwrap(embedded[name]?["embeddings"] as? [String: Any])
            XCTAssertEqual(Set(files.keys), Set(served.keys), name)
            for (modality, vector) in served {
                let written = try self.vector(embedOut, files[modality])
                XCTAssertEqual(written.count, vector.count)
                // Batches of other sizes may round differently in sgemm; far below any real difference.
                for (a, b) in zip(written, vector) { XCTAssertEqual(Double(a), b, accuracy: 1e-5, "\(name) \(modality)") }
            }
        }

        let classifyOut = scratch.appendingPathComponent("classify")
        let classify = try BulkProcess.run(["classify", inputs.path, "--output", classifyOut.path, "--bundle",
                                            daemon.bundle.path, "--top-k", "3", "--crops", "4"])
        XCTAssertEqual(classify.status, 0, classify.stderr)
        let classified = byPath(try records(classifyOut))
        let answer = try Curl.run(port: port, path: "/v1/classify?top_k=3&crops=4", headers: ["Content-Type": "video/mp4"],
                                  bodyFile: inputs.appendingPathComponent("clip.mp4"))
        let served = try XCTUnwrap(answer.json["labels"] as? [[String: Any]])
        let written = try XCTUnwrap(classified["clip.mp4"]?["labels"] as? [[String: Any]])
        XCTAssertEqual(written.compactMap { $0["index"] as? Int }, served.compactMap { $0["index"] as? Int })
        XCTAssertEqual(written.compactMap { $0["id"] as? String }, served.compactMap { $0["id"] as? String })
        for (a, b) in zip(written, served) {
            XCTAssertEqual(a["score"] as? Double ?? .nan, b["score"] as? Double ?? 0, accuracy: 1e-5)
        }

        let refused = try Curl.run(port: port, path: "/v1/classify", headers: ["Content-Type": "video/mp4"],
                                   bodyFile: inputs.appendingPathComponent("sub/garbage.mp4"))
        let servedError = try XCTUnwrap(refused.json["error"] as? [String: Any])
        let writtenError = try XCTUnwrap(classified["sub/garbage.mp4"]?["error"] as? [String: Any])
        XCTAssertEqual(writtenError["code"] as? String, servedError["code"] as? String)
        XCTAssertEqual(writtenError["message"] as? String, servedError["message"] as? String)
    }

    /// SIGINT stops taking files, records the clips in flight and exits 130; the rerun does exactly the rest.
    func testInterruptStopsCleanlyAndTheRerunFinishesTheRest() throws {
        let inputs = scratch.appendingPathComponent("copies")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        let total = 40
        for index in 0..<total {
            try FileManager.default.copyItem(at: Fixture.tone, to: inputs.appendingPathComponent("tone-\(index).wav"))
        }
        let output = scratch.appendingPathComponent("out")
        let arguments = ["embed", inputs.path, "--output", output.path, "--bundle", daemon.bundle.path, "--max-batch", "1"]
        // Debug logging prints a line per batch: the first one is the moment the run is under way.
        let stopped = try BulkProcess.run(arguments + ["--log-level", "debug"], interruptAfter: "batch.size")
        XCTAssertEqual(stopped.status, 130, stopped.stderr)
        XCTAssertEqual(stopped.summary["interrupted_by"] as? Int, 2)
        let done = try records(output).count
        XCTAssertEqual(done, stopped.summary["ok"] as? Int)
        XCTAssertGreaterThan(done, 0)
        XCTAssertLessThan(done, total)

        let rest = try BulkProcess.run(arguments)
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertEqual(rest.summary["already_done"] as? Int, done)
        XCTAssertEqual(rest.summary["ok"] as? Int, total - done)
        XCTAssertEqual(Set(try records(output).compactMap { $0["path"] as? String }).count, total)
    }
}

/// One run of the bulk binary: exit status, the JSON summary it prints on stdout, and its stderr.
private struct BulkProcess {
    var status: Int32
    var summary: [String: Any]
    var stderr: String

    /// With `interruptAfter`, SIGINT goes to the process as soon as that text appears on its stderr.
    static func run(_ arguments: [String], interruptAfter marker: String? = nil) throws -> BulkProcess {
        let process = Process()
        process.executableURL = try RunningDaemon.binary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // stderr is drained on its own thread so a chatty run never blocks on a full pipe.
        let errors = StderrCollector(marker: marker)
        let drained = DispatchGroup()
        DispatchQueue.global().async(group: drained) {
            while case let chunk = err.fileHandleForReading.availableData, !chunk.isEmpty { errors.append(chunk) }
        }
        if marker != nil {
            _ = errors.markerSeen.wait(timeout: .now() + 120)
            process.interrupt()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        let summary = (try? JSONSerialization.jsonObject(with: stdout) as? [String: Any]) ?? [:]
        return BulkProcess(status: process.terminationStatus, summary: summary, stderr: errors.text)
    }
}

private final class StderrCollector: @unchecked Sendable {
    let markerSeen = DispatchSemaphore(value: 0)
    private let marker: String?
    private let lock = NSLock()
    private var data = Data()  // guarded by lock
    private var signalled = false  // guarded by lock

    init(marker: String?) { self.marker = marker }

    func append(_ chunk: Data) {
        lock.withLock {
            data.append(chunk)
            if let marker, !signalled, String(decoding: data, as: UTF8.self).contains(marker) {
                signalled = true
                markerSeen.signal()
            }
        }
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
