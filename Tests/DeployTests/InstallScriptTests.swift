import Foundation
import XCTest

/// deploy/install.sh into a temporary root: what lands where, that a second run changes nothing, that the
/// admin's configuration survives, and that --uninstall takes back what it put there.
final class InstallScriptTests: XCTestCase {
    private let script = Commands.repository.appendingPathComponent("deploy/install.sh").path
    private let deploy = Commands.repository.appendingPathComponent("deploy")

    @discardableResult
    private func install(_ arguments: [String]) throws -> String {
        let result = try Commands.run("/bin/bash", [script] + arguments)
        XCTAssertEqual(result.status, 0, result.output)
        return result.output
    }

    private func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    func testInstallIsIdempotentKeepsEditedConfigAndUninstalls() throws {
        let root = try Commands.scratch(self)
        let binary = try Commands.avmaeServe()
        let arguments = ["--root", root.path, "--binary", binary.path]
        try install(arguments)

        let files = FileManager.default
        let installedBinary = root.appendingPathComponent("usr/local/bin/avmae-serve")
        XCTAssertTrue(files.isExecutableFile(atPath: installedBinary.path))
        XCTAssertEqual(try Data(contentsOf: installedBinary), try Data(contentsOf: binary))
        let service = root.appendingPathComponent("etc/systemd/system/avmae-serve.service")
        XCTAssertEqual(try text(service), try text(deploy.appendingPathComponent("avmae-serve.service")))
        XCTAssertEqual(try text(root.appendingPathComponent("etc/systemd/system/avmae-serve.socket")),
                       try text(deploy.appendingPathComponent("avmae-serve.socket")))
        let config = root.appendingPathComponent("etc/avmae-serve/avmae-serve.env")
        XCTAssertEqual(try text(config), try text(deploy.appendingPathComponent("avmae-serve.env")))
        let demo = root.appendingPathComponent("var/lib/avmae-serve/models/demo")
        for name in ["config.json", "model.safetensors", "labels.csv"] {
            XCTAssertTrue(files.fileExists(atPath: demo.appendingPathComponent(name).path), name)
        }
        // The env file's bundle is where the demo landed.
        XCTAssertTrue(try text(config).contains("\nAVMAE_BUNDLE=/var/lib/avmae-serve/models/demo\n"))

        // Second run, with the admin's edit in place: nothing is written, the edit survives.
        try (text(config) + "AVMAE_MAX_BATCH=4\n").write(to: config, atomically: true, encoding: .utf8)
        let modelDate = try files.attributesOfItem(atPath: demo.appendingPathComponent("model.safetensors").path)[.modificationDate] as? Date
        let again = try install(arguments)
        XCTAssertFalse(again.contains("+ "), "second run changed something:\n\(again)")
        XCTAssertTrue(try text(config).hasSuffix("AVMAE_MAX_BATCH=4\n"))
        XCTAssertEqual(try files.attributesOfItem(atPath: demo.appendingPathComponent("model.safetensors").path)[.modificationDate] as? Date,
                       modelDate)

        // Uninstall takes back binary, units and demo; the edited config stays, another bundle stays.
        let other = root.appendingPathComponent("var/lib/avmae-serve/models/mine")
        try files.createDirectory(at: other, withIntermediateDirectories: true)
        try install(["--root", root.path, "--uninstall"])
        for gone in [installedBinary, service, root.appendingPathComponent("etc/systemd/system/avmae-serve.socket"), demo] {
            XCTAssertFalse(files.fileExists(atPath: gone.path), gone.path)
        }
        XCTAssertTrue(files.fileExists(atPath: config.path), "edited config must be kept")
        XCTAssertTrue(files.fileExists(atPath: other.path), "bundles other than the demo must be kept")

        // With the config back to the default and no other bundle, nothing of ours is left.
        try files.removeItem(at: other)
        try files.removeItem(at: config)
        try install(arguments)
        try install(["--root", root.path, "--uninstall"])
        for gone in ["etc/avmae-serve", "var/lib/avmae-serve"] {
            XCTAssertFalse(files.fileExists(atPath: root.appendingPathComponent(gone).path), gone)
        }
    }

    func testPrefixMovesBinaryAndExecStart() throws {
        let root = try Commands.scratch(self)
        try install(["--root", root.path, "--prefix", "/opt/avmae", "--binary", try Commands.avmaeServe().path])
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: root.appendingPathComponent("opt/avmae/bin/avmae-serve").path))
        let unit = try text(root.appendingPathComponent("etc/systemd/system/avmae-serve.service"))
        let execStart = unit.split(separator: "\n").filter { $0.hasPrefix("ExecStart=") }
        XCTAssertEqual(execStart, ["ExecStart=/opt/avmae/bin/avmae-serve serve"])
    }

    func testDryRunPrintsTheChangesAndMakesNone() throws {
        let root = try Commands.scratch(self)
        let output = try install(["--root", root.path, "--binary", try Commands.avmaeServe().path, "--dry-run"])
        let planned = output.split(separator: "\n").filter { $0.hasPrefix("+ ") }
        XCTAssertEqual(planned.count, 6, output)  // binary, 2 units, config, models dir, demo bundle
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), [])
    }
}
