import ArgumentParser
import Dispatch
import Foundation
import Logging
import Media
import Serving

/// What a bulk command asks of each clip.
enum BulkJob: Sendable {
    case classify(ClassifyOptions)
    case embed(EmbedOptions, files: BulkEmbeddingFiles)

    var task: ClipTask {
        switch self {
        case .classify(let options): return .classify(options)
        case .embed(let options, _): return .embed(options)
        }
    }

    /// Refuses, before the first file, what every file would fail with.
    func check(_ info: ModelInfo) throws {
        guard case .classify(let options) = self else { return }
        guard info.hasHead else {
            throw ValidationError("model '\(info.name)' is \(info.kind.rawValue) and has no classification head; use embed")
        }
        guard (1...info.numClasses).contains(options.topK) else {
            throw ValidationError("--top-k: expected an integer in 1...\(info.numClasses), got \(options.topK)")
        }
    }

    /// Whether an earlier run's .npy file is still there (classify writes none).
    func arrayExists(_ file: String) -> Bool {
        guard case .embed(_, let files) = self else { return true }
        return files.exists(file)
    }
}

/// Feeds a bulk run's files to the serving core (the server's decode pool and decoder, batcher and inference
/// thread) and records each answer in results.jsonl. At most `window` clips are in flight: enough to keep every
/// decode thread busy with a full batch waiting for the model, few enough that the batcher never refuses one and
/// decoded clips do not pile up in memory. Files are read on the calling thread, ahead of the decoders.
struct BulkRunner {
    struct Tally: Sendable {
        var ok = 0
        var failed = 0
        /// Failed for a reason that was not the file's (see `BulkRecord.Failure.retryable`).
        var retryable = 0
        /// results.jsonl could not be written; the run stopped there.
        var logError: String?
    }

    let service: ClipService
    let job: BulkJob
    let log: BulkResultsLog
    /// max_body_bytes: a larger file is refused without being read, as the server refuses such a body.
    let maxBytes: Int
    let window: Int
    let logger: Logger

    /// Runs every input unless interrupted (or results.jsonl fails); returns once every started clip is recorded.
    func run(_ inputs: [BulkInput], progress: BulkProgress, interruption: BulkInterruption) -> Tally {
        let slots = DispatchSemaphore(value: window)
        let inFlight = DispatchGroup()
        let tally = TallyBox()
        for input in inputs {
            slots.wait()
            guard interruption.received == nil, tally.logError == nil else {
                slots.signal()
                break
            }
            inFlight.enter()
            process(input) { record in
                do {
                    try log.append(record)
                    tally.count(record)
                } catch {
                    tally.failedToLog("\(error)")
                    logger.error("cannot write results.jsonl; stopping", metadata: ["error": "\(error)"])
                }
                progress.finished(ok: record.status == .ok)
                slots.signal()
                inFlight.leave()
            }
        }
        inFlight.wait()
        return tally.value
    }

    private func process(_ input: BulkInput, done: @escaping @Sendable (BulkRecord) -> Void) {
        guard input.size <= maxBytes else {
            let why = MediaError.tooLarge(bytes: input.size, limit: maxBytes).description
            return done(BulkRecord(input, failure: .clipTooLarge(why + " (max_body_bytes)")))
        }
        let bytes: [UInt8]
        do {
            bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input.file)))
        } catch {
            return done(BulkRecord(input, unreadable: error.localizedDescription))
        }
        let job = job
        service.submit(ClipRequest(id: input.relativePath, bytes: bytes, task: job.task)) { result in
            switch (result, job) {
            case (.failure(let error), _):
                done(BulkRecord(input, failure: error))
            case (.success(.classify(let classified)), _):
                done(BulkRecord(input, classified: classified))
            case (.success(.embed(let embedded)), .embed(_, let files)):
                do {
                    done(BulkRecord(input, embedded: embedded, arrays: try files.write(embedded, for: input.relativePath)))
                } catch {
                    done(BulkRecord(input, unwritable: "\(error)"))
                }
            case (.success(.embed), .classify), (.success(.outputs), _):
                done(BulkRecord(input, failure: .inferenceFailed("the service answered another task than the one asked")))
            }
        }
    }
}

/// The run's counts, updated from the results queue's threads.
private final class TallyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var tally = BulkRunner.Tally()  // guarded by lock

    var value: BulkRunner.Tally { lock.withLock { tally } }
    var logError: String? { lock.withLock { tally.logError } }

    func count(_ record: BulkRecord) {
        lock.withLock {
            switch (record.status, record.error?.retryable) {
            case (.ok, _): tally.ok += 1
            case (.error, true?): tally.failed += 1; tally.retryable += 1
            case (.error, _): tally.failed += 1
            }
        }
    }

    func failedToLog(_ why: String) {
        lock.withLock { tally.logError = tally.logError ?? why }
    }
}
