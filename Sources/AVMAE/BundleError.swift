/// Everything that can be wrong with a model bundle or a model call, with a message that says what to fix.
public enum BundleError: Error, Equatable, CustomStringConvertible {
    case missingFile(String)
    case invalidConfig(field: String, String)
    case invalidSafetensors(file: String, String)
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    case wrongDType(tensor: String, String)
    case unusedTensors([String])
    case invalidLabels(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "bundle file \(path) does not exist"
        case .invalidConfig(let field, let why): return "config.json: \(field) \(why)"
        case .invalidSafetensors(let file, let why): return "\(file) is not a valid safetensors file: \(why)"
        case .missingTensor(let name): return "model.safetensors has no tensor \(name)"
        case .wrongShape(let name, let expected, let found):
            return "tensor \(name) has shape \(found), config.json implies \(expected)"
        case .wrongDType(let name, let dtype): return "tensor \(name) is \(dtype); bundles store float32 (F32)"
        case .unusedTensors(let names):
            let shown = names.prefix(5).joined(separator: ", ")
            return "model.safetensors has \(names.count) tensor(s) this model does not use (\(shown)\(names.count > 5 ? ", ..." : "")): wrong config.json, or a checkpoint that was not converted"
        case .invalidLabels(let why): return "labels.csv: \(why)"
        case .invalidInput(let why): return "invalid model input: \(why)"
        }
    }
}
