import ArgumentParser
import WeftProxyMain

/// The Weft CLI. It grows with the mesh: `up`, `stat`, `install`, `inject` come later.
@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: a service mesh with a filter-chain proxy.",
        subcommands: [Version.self, ProxyCommand.self, TapCommand.self])
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Weft's version.")

    func run() {
        print("weft \(WeftVersion.current)")
    }
}


