import ArgumentParser
import Foundation

/// The emojivoto demo: four small services that know nothing about Weft. Under `weft up`
/// (config/demo/emojivoto.yaml) each listens on `$PORT` and calls the others by name through
/// `$WEFT_OUTBOUND`, its sidecar proxy.
///
/// The hidden bug: on every vote, `voting` checks the shortcode with emoji's old HTTP/1.1
/// endpoint, which fails for the emojis near the bottom of the list; `--emoji-api grpc` fixes it.
@main
struct Emojivoto: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emojivoto",
        abstract: "The emojivoto demo app: web, emoji, voting and vote-bot.",
        subcommands: [WebCommand.self, EmojiCommand.self, VotingCommand.self, VoteBotCommand.self])
}

/// Where a service listens and how it reaches the others.
struct MeshOptions: ParsableArguments {
    @Option(help: "Port to listen on, on 127.0.0.1 (default: $PORT).")
    var port: Int?

    @Option(help: "host:port of the sidecar's outbound listener, through which other services are called (default: $WEFT_OUTBOUND).")
    var outbound: String?

    var listenPort: Int {
        get throws {
            if let port { return port }
            guard let text = ProcessInfo.processInfo.environment["PORT"], let port = Int(text) else {
                throw ValidationError("no --port and no $PORT")
            }
            return port
        }
    }

    /// The outbound proxy, as host and port.
    var outboundAddress: (host: String, port: Int) {
        get throws {
            let text = outbound ?? ProcessInfo.processInfo.environment["WEFT_OUTBOUND"] ?? ""
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
                throw ValidationError("no --outbound and no $WEFT_OUTBOUND (host:port of the sidecar's outbound listener)")
            }
            return (String(text[..<colon]), port)
        }
    }
}

/// One line per event on stdout (the log `weft up` keeps per app).
func log(_ message: String) {
    FileHandle.standardOutput.write(Data("\(message)\n".utf8))
}
