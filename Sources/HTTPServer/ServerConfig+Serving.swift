import Serving

extension ServerConfig {
    /// The serving core's settings, converted in this one place for `serve` and the bulk commands alike.
    public var serving: ClipService.Configuration {
        var serving = ClipService.Configuration()
        serving.maxBatch = maxBatch
        serving.maxDelaySeconds = maxDelayMs / 1000
        serving.maxQueuedRows = maxQueue
        serving.requestTimeoutSeconds = requestTimeoutSeconds
        serving.decodeConcurrency = decodeThreads
        serving.maxPendingDecodes = maxPendingDecodes
        serving.retryAfterSeconds = retryAfterSeconds
        serving.maxStreams = maxStreams
        serving.maxBatchSeconds = maxBatchSeconds
        return serving
    }
}
