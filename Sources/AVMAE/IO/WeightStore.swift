/// One weight tensor inside the loaded bundle, viewed as a matrix. Immutable and shared by all workers.
struct Weight {
    let matrix: Matrix
    /// Its name in the bundle (nil while recording).
    var name: String? = nil
}

/// The bundle's tensors by upstream Flax path. Every lookup checks the shape the config implies and records the
/// name, so that after building the model `unused()` can refuse tensors nothing read (a wrong config or an
/// unconverted checkpoint would otherwise load "fine").
final class WeightStore {
    private let file: SafeTensorsFile?
    private var used = Set<String>()
    /// Per tensor: how often it was handed out, and how often a preparation copied it. Where the two are equal,
    /// the bundle's own bytes are never read again.
    private var handedOut: [String: Int] = [:]
    private var copies: [String: Int] = [:]

    var copied: Set<String> { Set(copies.filter { handedOut[$0.key] == $0.value }.keys) }
    /// In recording mode (no file) every lookup succeeds and is logged with its shape: building a model this way
    /// lists the tensors a config needs without a second copy of the naming scheme (see `Model.tensorShapes`).
    private(set) var recorded = [(name: String, shape: [Int], fanIn: Int)]()
    private let placeholder = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    /// How weight matrices are made ready for the chosen engine and precision.
    let preparer: WeightPreparer
    /// For the stems and the head, which stay fp32 whatever the precision: they are a few percent of the work,
    /// and the patch embedding reads raw log-mels and pixels (models/README.md, accuracy).
    let fullPrecisionPreparer = WeightPreparer()

    init(file: SafeTensorsFile?, preparer: WeightPreparer = WeightPreparer()) {
        self.file = file
        self.preparer = preparer
    }

    /// Bytes of prepared weights held outside the mapping.
    var preparedBytes: Int { preparer.residentBytes + fullPrecisionPreparer.residentBytes }

    var isRecording: Bool { file == nil }

    deinit { placeholder.deallocate() }

    func scope(_ prefix: String) -> WeightScope {
        WeightScope(store: self, prefix: prefix, preparer: preparer)
    }

    /// Looks up `name` (or the first alias present), checks its shape, and returns it as a [rows, cols] matrix.
    func weight(_ names: [String], shape: [Int], rows: Int, cols: Int) throws -> Weight {
        precondition(rows * cols == shape.reduce(1, *))
        guard let file else {
            recorded.append((names[0], shape, rows))
            return Weight(matrix: Matrix(base: placeholder, rows: rows, cols: cols, ld: cols))
        }
        guard let name = names.first(where: { file.entries[$0] != nil }) else { throw BundleError.missingTensor(names[0]) }
        let (pointer, entry) = try file.floatPointer(name)
        guard entry.shape == shape else { throw BundleError.wrongShape(tensor: name, expected: shape, found: entry.shape) }
        used.insert(name)
        handedOut[name, default: 0] += 1
        return Weight(matrix: Matrix(base: pointer, rows: rows, cols: cols, ld: cols), name: name)
    }

    func preparedCopies(of parts: [Weight]) {
        for name in parts.compactMap(\.name) { copies[name, default: 0] += 1 }
    }

    func has(_ name: String) -> Bool { file?.entries[name] != nil }

    var parameterCount: Int {
        file.map { f in f.entries.values.reduce(0) { $0 + $1.shape.reduce(1, *) } } ?? recorded.reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    func unused() -> [String] { file?.names.filter { !used.contains($0) } ?? [] }
}

/// A path prefix into a `WeightStore` (`store.scope("Transformer").scope("encoderblock_3")`), so each layer
/// names its own tensors exactly as the upstream module tree does.
struct WeightScope {
    let store: WeightStore
    let prefix: String
    let preparer: WeightPreparer

    func scope(_ name: String) -> WeightScope {
        WeightScope(store: store, prefix: path(name), preparer: preparer)
    }

    /// The same scope with its products kept at fp32 on OpenBLAS, whatever the model's precision.
    var fullPrecision: WeightScope {
        WeightScope(store: store, prefix: prefix, preparer: store.fullPrecisionPreparer)
    }

    /// Column blocks (K, n_i) of one product, prepared once for the engine (a placeholder when recording).
    func prepare(_ parts: [Weight], rowScale: [Float]? = nil) throws -> PreparedWeight {
        let k = parts[0].matrix.rows, n = parts.reduce(0) { $0 + $1.matrix.cols }
        guard !store.isRecording else {
            return PreparedWeight(.openBLAS(Matrix(base: parts[0].matrix.base, rows: k, cols: n, ld: n)), rows: k, cols: n)
        }
        let prepared = try preparer.prepare(parts.map(\.matrix), rowScale: rowScale)
        if !prepared.reads(parts[0].matrix) { store.preparedCopies(of: parts) }
        return prepared
    }

    func path(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix)/\(name)" }

    /// A tensor stored with `shape`, viewed as [rows, cols] (row-major reshape, no copy).
    func callAsFunction(_ name: String, shape: [Int], as rows: Int, _ cols: Int) throws -> Weight {
        try store.weight([path(name)], shape: shape, rows: rows, cols: cols)
    }

    /// A 1-D tensor (bias, LayerNorm scale) as a [1, n] row.
    func vector(_ name: String, _ shape: [Int]) throws -> Weight {
        try self(name, shape: shape, as: 1, shape.reduce(1, *))
    }
}
