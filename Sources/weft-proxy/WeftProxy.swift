import WeftProxyMain

/// `weft-proxy`: the data plane, one per workload instance.
@main
struct WeftProxyEntry {
    static func main() async {
        await ProxyCommand.main(nil)
    }
}
