/// One weight tensor inside the memory-mapped bundle, viewed as a matrix. Immutable and shared by all workers.
struct Weight {
    let matrix: Matrix
}

/// The bundle's tensors by upstream Flax path. Every lookup checks the shape the config implies and records the
/// name, so that after building the model `unused()` can refuse tensors nothing read (a wrong config or an
/// unconverted checkpoint would otherwise load "fine").
final class WeightStore {
    let file: SafeTensorsFile
    private var used = Set<String>()

    init(file: SafeTensorsFile) {
        self.file = file
    }

    func scope(_ prefix: String) -> WeightScope {
        WeightScope(store: self, prefix: prefix)
    }

    /// Looks up `name` (or the first alias present), checks its shape, and returns it as a [rows, cols] matrix.
    func weight(_ names: [String], shape: [Int], rows: Int, cols: Int) throws -> Weight {
        precondition(rows * cols == shape.reduce(1, *))
        guard let name = names.first(where: { file.entries[$0] != nil }) else { throw BundleError.missingTensor(names[0]) }
        let (pointer, entry) = try file.floatPointer(name)
        guard entry.shape == shape else { throw BundleError.wrongShape(tensor: name, expected: shape, found: entry.shape) }
        used.insert(name)
        return Weight(matrix: Matrix(base: pointer, rows: rows, cols: cols, ld: cols))
    }

    func has(_ name: String) -> Bool { file.entries[name] != nil }

    func unused() -> [String] { file.names.filter { !used.contains($0) } }
}

/// A path prefix into a `WeightStore` (`store.scope("Transformer").scope("encoderblock_3")`), so each layer
/// names its own tensors exactly as the upstream module tree does.
struct WeightScope {
    let store: WeightStore
    let prefix: String

    func scope(_ name: String) -> WeightScope {
        WeightScope(store: store, prefix: path(name))
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
