import AVMAE
import Foundation
import HTTPServer

/// A bundle folder the daemon serves, and under which name. `key` says where it comes from, so a reload that
/// renames an unnamed bundle (its config.json's name changed) replaces it rather than adding a second model.
struct ModelSource: Sendable, Equatable {
    var key: String
    var name: String
    var directory: URL

    enum ScanError: Error, CustomStringConvertible {
        case unreadableRepository(String, String)
        case badName(String, folder: String)
        case duplicateName(String, [String])

        var description: String {
            switch self {
            case .unreadableRepository(let path, let why): return "model repository \(path): \(why)"
            case .badName(let name, let folder): return "cannot serve \(folder) as '\(name)': \(ModelName.rule)"
            case .duplicateName(let name, let folders):
                return "two bundles would be served as '\(name)': \(folders.joined(separator: ", ")); name them with NAME=DIR"
            }
        }
    }

    /// Every bundle the configuration names: `bundle` entries, then each folder of `model_repository` that holds a
    /// config.json (other entries, such as a README or a half-copied folder without one, are skipped).
    static func scan(_ config: ServerConfig) throws -> [ModelSource] {
        var sources = config.bundle.entries.map { entry in
            let directory = URL(fileURLWithPath: entry.directory)
            return ModelSource(key: entry.name.map { "bundle:\($0)" } ?? "bundle-dir:\(directory.path)",
                               name: entry.name ?? configuredName(directory), directory: directory)
        }
        if let repository = config.modelRepository {
            let root = URL(fileURLWithPath: repository)
            let folders: [String]
            do { folders = try FileManager.default.contentsOfDirectory(atPath: root.path) } catch {
                throw ScanError.unreadableRepository(repository, error.localizedDescription)
            }
            for folder in folders.sorted() where !folder.hasPrefix(".") {
                let directory = root.appendingPathComponent(folder)
                guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
                    continue
                }
                sources.append(ModelSource(key: "repository:\(folder)", name: folder, directory: directory))
            }
        }
        for source in sources where !ModelName.isValid(source.name) {
            throw ScanError.badName(source.name, folder: source.directory.path)
        }
        for (name, same) in Dictionary(grouping: sources, by: \.name) where same.count > 1 {
            throw ScanError.duplicateName(name, same.map(\.directory.path))
        }
        return sources
    }

    /// The name in the bundle's config.json; the folder's name if there is none to read (its load then says why).
    private static func configuredName(_ directory: URL) -> String {
        let file = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: file), let config = try? JSONDecoder().decode(ModelConfig.self, from: data)
        else { return directory.lastPathComponent }
        return config.name
    }
}
