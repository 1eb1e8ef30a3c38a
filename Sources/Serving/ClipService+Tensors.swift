import AVMAE

/// The path that skips the media decoder: rows of waveform, spectrogram or frames go straight to the batcher the
/// clips use, and come back as one `RawOutputs` row each.
extension ClipService {
    /// Queues the rows at once. `completion` is called exactly once, by the result, the request's deadline, or
    /// `abandon()` on the returned handle (which takes rows not yet started out of the queue).
    @discardableResult
    public func submit(_ request: TensorRequest,
                       completion: @escaping @Sendable (Result<RawOutputs, ServingError>) -> Void) -> PendingRequest<RawOutputs> {
        if let reason = intake.state.notReadyReason {
            metrics.rejected(.notReady)
            return .refused(.notReady(reason), completion: completion)
        }
        let rows: [BatchRow]
        let used: Set<Modality>
        do {
            (rows, used) = try Self.rows(request, info: info)
        } catch {
            return .refused(error, completion: completion)
        }
        let start = clock.now()
        let deadline = start.adding(seconds: timeout(request.timeoutSeconds))
        let pending = admit(until: deadline, completion: completion)
        let modalities = info.modalities.filter(used.contains)
        _ = pending.enqueue {
            batcher.submit(kind: Self.kind(for: used), rows: rows, deadline: deadline) { [self] result in
                resultsQueue.async {
                    pending.answer(result.map { output in
                        var timings = Timings(queue: output.queueSeconds, inference: output.inferenceSeconds)
                        timings.total = self.clock.now().seconds(since: start)
                        return self.assemble(output.rows, modalities: modalities, embeddings: request.embeddings,
                                             timings: timings)
                    })
                }
            }
        }
        return pending
    }

    /// One batch row per input row, after checking the inputs against the model. // batch x BatchRow
    static func rows(_ request: TensorRequest, info: ModelInfo) throws(ServingError) -> ([BatchRow], Set<Modality>) {
        let batch = request.batch
        guard batch > 0 else { throw .invalidInput("the batch is empty") }
        guard request.waveform == nil || request.spectrogram == nil else {
            throw .invalidInput("send audio as a waveform or as a spectrogram, not both")
        }
        var used: Set<Modality> = []
        if request.waveform != nil || request.spectrogram != nil { used.insert(.audio) }
        if request.frames != nil { used.insert(.video) }
        guard !used.isEmpty else { throw .invalidInput("no audio or video input was given") }
        for modality in used where !info.modalities.contains(modality) {
            throw .invalidInput("model '\(info.name)' has no \(modality.rawValue) branch")
        }
        func slices<T>(_ values: [T]?, _ rowLength: Int, _ name: String) throws(ServingError) -> [[T]?] {
            guard let values else { return Array(repeating: nil, count: batch) }
            guard values.count == batch * rowLength else {
                throw .invalidInput("\(name) holds \(values.count) values; \(batch) rows need \(batch * rowLength)")
            }
            return (0..<batch).map { Array(values[($0 * rowLength)..<(($0 + 1) * rowLength)]) }
        }
        let waveforms = try slices(request.waveform, info.windowSamples, "the waveform")
        let spectrograms = try slices(request.spectrogram, info.spectrogramShape.reduce(1, *), "the spectrogram")
        let frames = try slices(request.frames, info.videoRowLength, "the frames")
        let rows = (0..<batch).map {
            BatchRow(waveform: waveforms[$0], spectrogram: spectrograms[$0], frames: frames[$0],
                     keepTokens: request.embeddings)
        }
        return (rows, used)
    }

    private func assemble(_ outputs: [RowOutput], modalities: [Modality], embeddings: Bool, timings: Timings) -> RawOutputs {
        let logits = outputs.compactMap(\.logits)
        let hasHead = logits.count == outputs.count && !logits.isEmpty
        var pooled: [Modality: [Float]] = [:]
        if embeddings {
            for modality in modalities {
                pooled[modality] = outputs.flatMap { $0.tokens[modality]?.meanOfRows() ?? [] }
            }
        }
        return RawOutputs(model: info.name, rows: outputs.count, modalities: modalities,
                          logits: hasHead ? logits.flatMap { $0 } : nil,
                          probabilities: hasHead ? logits.flatMap { backend.scores(logits: $0) } : nil,
                          embeddings: pooled, timings: timings)
    }
}
