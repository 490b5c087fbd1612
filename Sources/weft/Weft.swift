import ArgumentParser
import WeftProxyMain

/// The Weft CLI: the mesh on one machine (`up`), the control plane (`controller`), a proxy
/// (`proxy`), and the commands that look into a running mesh (`stat`, `edges`, `tap`, `diagnose`, `check`).
@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: a service mesh with a filter-chain proxy.",
        subcommands: [UpCommand.self, StatCommand.self, EdgesCommand.self, TapCommand.self, DiagnoseCommand.self, CheckCommand.self,
                      VersionCommand.self, ControllerCommand.self, ProxyCommand.self])
}
