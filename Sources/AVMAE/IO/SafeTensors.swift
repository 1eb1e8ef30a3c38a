import Foundation

/// A safetensors file (https://github.com/huggingface/safetensors: 8-byte LE header length, JSON header,
/// raw little-endian data), read once into anonymous memory. Not a file mapping: an operator who copies new
/// weights over the file (`cp` truncates it in place) would otherwise turn the running model's next read into a
/// SIGBUS. Tensors that preparation copied elsewhere are given back with `release(_:)`.
public final class SafeTensorsFile: @unchecked Sendable {
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        let offset: Int
        let byteCount: Int
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let mapping: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let dataStart: Int

    static let elementSize = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "U8": 1, "I8": 1, "I32": 4, "I64": 8, "BOOL": 1]

    public init(path: String) throws {
        self.path = path
        let name = (path as NSString).lastPathComponent
        func bad(_ why: String) -> BundleError { .invalidSafetensors(file: name, why) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BundleError.missingFile(path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw bad("cannot stat") }
        let size = Int(st.st_size)
        guard size >= 8 else { throw bad("file is \(size) bytes, shorter than the 8-byte header length") }
        guard let map = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), map != MAP_FAILED
        else { throw bad("cannot allocate \(size) bytes for it") }
        mapping = map
        mappedLength = size
        var ok = false
        defer { if !ok { munmap(map, size) } }
        var done = 0
        while done < size {
            let got = pread(fd, map + done, min(size - done, 64 << 20), off_t(done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { throw bad(got == 0 ? "the file shrank while it was read" : "read failed (errno \(errno))") }
            done += got
        }
        mprotect(map, size, PROT_READ)

        let headerLength = Int(map.loadUnaligned(as: UInt64.self).littleEndian)
        guard headerLength > 1, headerLength <= size - 8 else {
            throw bad("header length \(headerLength) does not fit in a \(size)-byte file (truncated?)")
        }
        dataStart = 8 + headerLength
        let headerData = Data(bytes: map + 8, count: headerLength)
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw bad("header is not a JSON object")
        }
        var entries = [String: Entry]()
        var metadata = [String: String]()
        for (key, value) in json {
            if key == "__metadata__" {
                for (mk, mv) in value as? [String: Any] ?? [:] { metadata[mk] = "\(mv)" }
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw bad("entry \(key) lacks dtype, shape or data_offsets") }
            guard let width = Self.elementSize[dtype] else { throw bad("entry \(key) has unknown dtype \(dtype)") }
            let count = shape.reduce(1, *)
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] - offsets[0] == count * width else {
                throw bad("entry \(key): data_offsets \(offsets) do not hold shape \(shape) of \(dtype)")
            }
            guard dataStart + offsets[1] <= size else {
                throw bad("entry \(key) ends past the end of the file (truncated?)")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, offset: offsets[0], byteCount: count * width)
        }
        self.entries = entries
        self.metadata = metadata
        ok = true
    }

    deinit { munmap(mapping, mappedLength) }

    /// Frees the whole pages inside these tensors, which nothing may read afterwards: preparation made its own
    /// copies of them (q/k/v joined, oneDNN's int8/bf16 layouts).
    func release(_ names: Set<String>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for name in names {
            guard let e = entries[name] else { continue }
            let start = (dataStart + e.offset + page - 1) / page * page
            let end = (dataStart + e.offset + e.byteCount) / page * page
            if end > start { madvise(mapping + start, end - start, MADV_DONTNEED) }
        }
    }

    public var names: [String] { entries.keys.sorted() }

    /// Zero-copy pointer to an F32 tensor's data inside the mapping. Data that is not 4-byte aligned (a writer
    /// that did not pad its header) is refused rather than read misaligned.
    func floatPointer(_ name: String) throws -> (UnsafePointer<Float>, Entry) {
        guard let e = entries[name] else { throw BundleError.missingTensor(name) }
        guard e.dtype == "F32" else { throw BundleError.wrongDType(tensor: name, e.dtype) }
        let raw = UnsafeRawPointer(mapping) + dataStart + e.offset
        guard Int(bitPattern: raw) % MemoryLayout<Float>.alignment == 0 else {
            throw BundleError.invalidSafetensors(file: (path as NSString).lastPathComponent, "tensor \(name) is not 4-byte aligned")
        }
        return (raw.assumingMemoryBound(to: Float.self), e)
    }

    /// A copy of any numeric tensor converted to Float (test inputs such as uint8 frames, float64 references).
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw BundleError.missingTensor(name) }
        let raw = UnsafeRawPointer(mapping) + dataStart + e.offset
        let count = e.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        switch e.dtype {
        case "F32": for i in 0..<count { out[i] = raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case "F64": for i in 0..<count { out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case "U8": for i in 0..<count { out[i] = Float(raw.load(fromByteOffset: i, as: UInt8.self)) }
        default: throw BundleError.wrongDType(tensor: name, e.dtype)
        }
        return Tensor(shape: e.shape, data: out)
    }

    /// The raw bytes of a tensor (uint8 video frames are converted by the caller exactly as upstream does).
    public func bytes(_ name: String) throws -> [UInt8] {
        guard let e = entries[name] else { throw BundleError.missingTensor(name) }
        let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(mapping) + dataStart + e.offset, count: e.byteCount)
        return [UInt8](raw)
    }

    /// Writes float32 tensors (sorted by name, header padded to 8 bytes so every tensor is aligned).
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try write(values: tensors.map { ($0.0, $0.1.shape, .f32($0.1.data)) }, metadata: metadata, to: url)
    }

    /// Writes tensors of mixed dtypes (e.g. `run --clip`'s uint8 frames and float64 times beside float32 outputs).
    public static func write(values: [(String, [Int], SafeTensorValues)], metadata: [String: String] = [:], to url: URL) throws {
        let byName = Dictionary(values.map { ($0.0, $0.2) }, uniquingKeysWith: { a, _ in a })
        let layout = values.map { (name: $0.0, shape: $0.1, dtype: $0.2.dtype, size: $0.2.elementSize) }
        try write(layout: layout, metadata: metadata, to: url) { byName[$0]!.bytes }
    }

    /// Streams float32 tensors to disk one at a time: `data(name)` is asked for each tensor in name order, so a
    /// large model (a 1.2 GB ViT-Large) is never held twice in memory.
    public static func write(shapes: [(String, [Int])], metadata: [String: String] = [:], to url: URL,
                             data: (String) throws -> [Float]) throws {
        try write(layout: shapes.map { (name: $0.0, shape: $0.1, dtype: "F32", size: 4) }, metadata: metadata, to: url) {
            try data($0).withUnsafeBytes { Data($0) }
        }
    }

    private static func write(layout: [(name: String, shape: [Int], dtype: String, size: Int)], metadata: [String: String],
                              to url: URL, data: (String) throws -> Data) throws {
        var header = [String: Any]()
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = layout.sorted { $0.name < $1.name }
        for (name, shape, dtype, size) in sorted {
            let bytes = size * shape.reduce(1, *)
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        let tmp = url.appendingPathExtension("partial")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw BundleError.missingFile(tmp.path)
        }
        let handle = try FileHandle(forWritingTo: tmp)
        defer { try? handle.close() }
        try handle.write(contentsOf: withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) })
        try handle.write(contentsOf: json)
        for (name, shape, _, size) in sorted {
            let bytes = try data(name)
            precondition(bytes.count == size * shape.reduce(1, *), "tensor \(name): \(bytes.count) bytes for shape \(shape)")
            try handle.write(contentsOf: bytes)
        }
        try handle.close()
        _ = try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: tmp, to: url)
    }
}

/// One tensor's values for `SafeTensorsFile.write(values:)`, in the dtypes safetensors calls F32, F64 and U8.
public enum SafeTensorValues {
    case f32([Float])
    case f64([Double])
    case u8([UInt8])

    var dtype: String {
        switch self {
        case .f32: return "F32"
        case .f64: return "F64"
        case .u8: return "U8"
        }
    }

    var elementSize: Int {
        switch self {
        case .f32: return 4
        case .f64: return 8
        case .u8: return 1
        }
    }

    var bytes: Data {
        switch self {
        case .f32(let values): return values.withUnsafeBytes { Data($0) }
        case .f64(let values): return values.withUnsafeBytes { Data($0) }
        case .u8(let values): return Data(values)
        }
    }
}
