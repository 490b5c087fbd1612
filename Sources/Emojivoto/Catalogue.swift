import EmojivotoAPI

/// The emojis on offer, in display order.
enum Catalogue {
    static let all: [Emojivoto_V1_Emoji] = [
        ("👻", ":ghost:"), ("🎈", ":balloon:"), ("💩", ":poop:"), ("🌈", ":rainbow:"), ("🍩", ":doughnut:"),
        ("🦄", ":unicorn:"), ("🍕", ":pizza:"), ("🚀", ":rocket:"), ("🐙", ":octopus:"), ("🌮", ":taco:"),
        ("🎉", ":tada:"), ("🐳", ":whale:"), ("🔥", ":fire:"), ("🍺", ":beer:"), ("🌵", ":cactus:"),
        ("🎸", ":guitar:"), ("🥑", ":avocado:"), ("🐼", ":panda_face:"), ("🍉", ":watermelon:"), ("⚡", ":zap:"),
    ].map { unicode, shortcode in .with { $0.unicode = unicode; $0.shortcode = shortcode } }

    static func find(_ shortcode: String) -> Emojivoto_V1_Emoji? {
        all.first { $0.shortcode == shortcode }
    }

    /// The old HTTP/1.1 lookup was never fixed for the emojis added last: it fails for the bottom
    /// quarter of the list. The gRPC lookup works for all of them.
    static func isBrokenInOldEndpoint(_ shortcode: String) -> Bool {
        guard let index = all.firstIndex(where: { $0.shortcode == shortcode }) else { return false }
        return index >= all.count * 3 / 4
    }
}
