/// Owned scratch memory for the forward pass. Buffers belong to one `Workspace` and so to one worker thread.
final class Buffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Grows (never shrinks) so a worker settles on its largest request and then stops allocating.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        pointer = .allocate(capacity: count)
        capacity = count
    }

    /// A [rows, cols] matrix view of the first rows*cols floats, growing the buffer if needed.
    func matrix(_ rows: Int, _ cols: Int) -> MutableMatrix {
        reserve(rows * cols)
        return MutableMatrix(base: pointer, rows: rows, cols: cols, ld: cols)
    }
}

/// A row-major float matrix view with a leading dimension, so column blocks (one attention head) are views too.
struct Matrix {
    let base: UnsafePointer<Float>
    let rows: Int
    let cols: Int
    let ld: Int

    init(base: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int) {
        precondition(cols <= ld, "Matrix: cols \(cols) exceed leading dimension \(ld)")
        self.base = base
        self.rows = rows
        self.cols = cols
        self.ld = ld
    }

    func rows(_ start: Int, _ count: Int) -> Matrix {
        precondition(start >= 0 && start + count <= rows)
        return Matrix(base: base + start * ld, rows: count, cols: cols, ld: ld)
    }

    func columns(_ start: Int, _ count: Int) -> Matrix {
        precondition(start >= 0 && start + count <= cols)
        return Matrix(base: base + start, rows: rows, cols: count, ld: ld)
    }

    func row(_ r: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: base + r * ld, count: cols)
    }

    func toArray() -> [Float] {
        var out = [Float]()
        out.reserveCapacity(rows * cols)
        for r in 0..<rows { out.append(contentsOf: row(r)) }
        return out
    }
}

struct MutableMatrix {
    let base: UnsafeMutablePointer<Float>
    let rows: Int
    let cols: Int
    let ld: Int

    var readOnly: Matrix { Matrix(base: base, rows: rows, cols: cols, ld: ld) }

    func rows(_ start: Int, _ count: Int) -> MutableMatrix {
        precondition(start >= 0 && start + count <= rows)
        return MutableMatrix(base: base + start * ld, rows: count, cols: cols, ld: ld)
    }

    func columns(_ start: Int, _ count: Int) -> MutableMatrix {
        precondition(start >= 0 && start + count <= cols)
        return MutableMatrix(base: base + start, rows: rows, cols: count, ld: ld)
    }

    func row(_ r: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base + r * ld, count: cols)
    }

    /// Sets every row to `vector` (how biases are laid down before a gemm with beta = 1).
    func fillRows(with vector: Matrix) {
        precondition(vector.rows == 1 && vector.cols == cols, "fillRows: bias has \(vector.cols) values for \(cols) columns")
        for r in 0..<rows { (base + r * ld).update(from: vector.base, count: cols) }
    }

    func copy(from source: Matrix) {
        precondition(source.rows == rows && source.cols == cols, "copy: shape mismatch")
        for r in 0..<rows { (base + r * ld).update(from: source.base + r * source.ld, count: cols) }
    }

    func scale(by factor: Float) {
        for r in 0..<rows { vScale(row(r), factor) }
    }

    func fill(from values: [Float]) {
        precondition(values.count == rows * cols)
        values.withUnsafeBufferPointer { src in
            for r in 0..<rows { (base + r * ld).update(from: src.baseAddress! + r * cols, count: cols) }
        }
    }
}
