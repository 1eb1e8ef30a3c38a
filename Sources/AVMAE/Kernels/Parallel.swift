import Dispatch

/// Splits rows across the cores for the elementwise kernels (softmax, GELU). Between gemm calls OpenBLAS's
/// threads are idle, and on a 2-core machine a single-threaded softmax over a 1568 x 1568 score matrix left one
/// core idle for ~15% of a video forward pass. Synchronous: returns when every chunk is done, owns no queue.
func parallelRows(_ rows: Int, work: Int, _ body: (Range<Int>) -> Void) {
    let chunks = min(BLAS.threads, rows, max(1, work / minimumParallelWork))
    guard chunks > 1 else { return body(0..<rows) }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            body((rows * c / chunks)..<(rows * (c + 1) / chunks))
        }
    }
}

/// Below this many elements a split costs more than it saves (a concurrentPerform round trip is ~10 µs).
private let minimumParallelWork = 1 << 16
