import Dispatch
import Logging

/// The only owner of the model session and its workspace. Everything it does happens on one `InferenceThread`,
/// which is therefore the only thread that calls into BLAS and oneDNN. The batcher hands it one batch at a time.
/// The queue is passed in so that, during a model reload, the old and the new model's workers share it:
/// the new model's warm-up then waits behind the old model's batches instead of competing for the cores.
///
/// Drain path: the queue is serial and fed one batch at a time by `Batcher`, so once the batcher is idle
/// this worker's share of the queue is too.
final class InferenceWorker: @unchecked Sendable {
    private let queue: InferenceThread
    private let backend: InferenceBackend
    private let clock: ServingClock
    private let logger: Logger
    private var session: InferenceSession?  // touched only on `queue`

    init(backend: InferenceBackend, queue: InferenceThread, clock: ServingClock, logger: Logger) {
        self.backend = backend
        self.queue = queue
        self.clock = clock
        self.logger = logger
    }

    /// Runs `rows` on the inference thread and reports the outputs and how long the model took, in seconds.
    func run(_ rows: [BatchRow], kind: InputKind,
             completion: @escaping @Sendable (Result<[RowOutput], ServingError>, Double) -> Void) {
        queue.async { [self] in
            let session = self.session ?? backend.makeSession()
            self.session = session
            let start = clock.now()
            let result: Result<[RowOutput], ServingError>
            do {
                let outputs = try session.run(rows, kind: kind)
                precondition(outputs.count == rows.count, "backend returned \(outputs.count) rows for \(rows.count)")
                result = .success(outputs)
            } catch {
                logger.error("inference failed", metadata: ["error": "\(error)", "batch.size": "\(rows.count)"])
                result = .failure(.inferenceFailed("\(error)"))
            }
            completion(result, clock.now().seconds(since: start))
        }
    }
}
