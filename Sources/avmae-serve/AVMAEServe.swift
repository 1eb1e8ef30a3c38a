import ArgumentParser
import Foundation

@main
struct AVMAEServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "avmae-serve",
        abstract: "Serve Audiovisual Masked Autoencoder (AV-MAE) models over HTTP.",
        subcommands: [Serve.self, RunCommand.self, BenchCommand.self, InspectCommand.self, DecodeCommand.self, DemoBundleCommand.self,
                      Models.self, DecodeWorkerCommand.self, BulkClassifyCommand.self, BulkEmbedCommand.self]
    )
}
