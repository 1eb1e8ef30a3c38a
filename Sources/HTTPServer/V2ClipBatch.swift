import Foundation
import Serving

/// The CLIP elements of one infer request: each file is submitted as a request of its own (its own decode,
/// admission and deadline, its rows batched with everyone's), and the answers are stacked in order once all are
/// in. The first element to fail fails the request, naming the element, and the others are abandoned.
final class V2ClipBatch: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by lock:
    private var parts: [RawOutputs?]
    private var pending: [PendingClip] = []
    private var answered = false
    private var failed = false
    private let completion: @Sendable (Result<RawOutputs, Error>) -> Void

    private init(count: Int, completion: @escaping @Sendable (Result<RawOutputs, Error>) -> Void) {
        parts = Array(repeating: nil, count: count)
        self.completion = completion
    }

    /// Submits every clip; returns what gives them all up (the client went away).
    static func submit(_ clips: [ClipRequest], to service: ClipService,
                       completion: @escaping @Sendable (Result<RawOutputs, Error>) -> Void) -> @Sendable () -> Void {
        let batch = V2ClipBatch(count: clips.count, completion: completion)
        let handles = clips.enumerated().map { index, clip in
            service.submit(clip) { result in batch.answer(index, result) }
        }
        // An element may have failed before the others were all submitted: they are given up now.
        let failedAlready = batch.lock.withLock {
            batch.pending = handles
            return batch.failed
        }
        if failedAlready { batch.withdrawAll() }
        return { batch.abandonAll() }
    }

    private func answer(_ index: Int, _ result: Result<ClipResult, ServingError>) {
        let outcome: Result<RawOutputs, Error> = result.mapError { $0 as Error }.flatMap { result in
            guard case .outputs(let raw) = result else {
                return .failure(ServingError.inferenceFailed("a /v1 result came back for a /v2 request"))
            }
            return .success(raw)
        }
        let finished: Result<RawOutputs, Error>? = lock.withLock {
            guard !answered else { return nil }
            switch outcome {
            case .failure(let error):
                answered = true
                failed = true
                return .failure(parts.count == 1 ? error : Self.naming(index, error))
            case .success(let raw):
                parts[index] = raw
                let done = parts.compactMap { $0 }
                guard done.count == parts.count else { return nil }
                answered = true
                return .success(RawOutputs.stacked(done))
            }
        }
        guard let finished else { return }
        if case .failure = finished { withdrawAll() }
        completion(finished)
    }

    /// The client went away: every element is abandoned (and counted as such).
    private func abandonAll() {
        for handle in lock.withLock({ pending }) { handle.abandon() }
    }

    /// Another element failed: the rest is dropped without being counted as disconnects.
    private func withdrawAll() {
        let why = ServingError.cancelled("another CLIP element of the request failed")
        for handle in lock.withLock({ pending }) { handle.withdraw(because: why) }
    }

    private static func naming(_ index: Int, _ error: Error) -> APIError {
        var api = APIError(any: error)
        api.message = "CLIP element \(index): \(api.message)"
        return api
    }
}
