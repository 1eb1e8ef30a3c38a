import AVMAE
import Media
import Serving

/// A streamed recording decoded window by window in a sandboxed worker of its own: the parent side of
/// `WorkerRequest.stream`. The worker is ended (killed and reaped) when the stream ends or is closed early.
final class WorkerWindowSource: WindowSource {
    private let pool: DecodeWorkerPool
    private var worker: WorkerProcess?
    private var expected = 0
    private(set) var decodedSeconds = 0.0
    let available: Set<Modality>

    /// Starts the recording on a fresh worker; throws `ServingError` if the worker or the decoder refuses it.
    init(_ source: MediaSource, policy: ClipPolicy, limits: MediaLimits, pool: DecodeWorkerPool) throws {
        self.pool = pool
        let worker: WorkerProcess
        do {
            worker = try pool.streamingWorker()
        } catch {
            throw ServingError.inferenceFailed("could not start a decode worker: \(error)")
        }
        do {
            switch try worker.startStream(source, policy: policy, limits: limits) {
            case .opened(let hasAudio, let hasVideo): available = Modality.available(audio: hasAudio, video: hasVideo)
            case .refused(let error): throw MediaClipDecoder.streamRefusal(error)
            }
        } catch let failure as WorkerFailure {
            pool.streamingWorkerFailed(worker, failure)
            throw ServingError.undecodableClip(failure.message)
        }
        self.worker = worker
    }

    func next() throws -> DecodedWindow? {
        guard let worker else { return nil }
        let message: WorkerProcess.Streamed
        do {
            message = try worker.nextStreamed()
        } catch let failure as WorkerFailure {
            pool.streamingWorkerFailed(worker, failure)
            close()
            throw ServingError.undecodableClip(failure.message)
        }
        switch message {
        case .window(let window) where window.index == expected:
            expected += 1
            return window
        case .window(let window):
            close()
            throw ServingError.undecodableClip("the decode worker sent window \(window.index) where \(expected) was due")
        case .ended(let seconds):
            decodedSeconds = seconds
            close()
            return nil
        case .failed(let error):
            close()
            throw MediaClipDecoder.translate(error)
        }
    }

    func close() {
        worker = nil  // its deinit kills and reaps the process
    }
}
