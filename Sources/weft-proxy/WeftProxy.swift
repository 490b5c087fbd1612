#if canImport(Glibc)
import Glibc
#endif
import WeftProxyMain

/// `weft-proxy`: the data plane, one per workload instance.
///
/// The entry point is synchronous and parks the main thread while the proxy runs on Swift
/// concurrency's threads and its event loops. An `async` main would end the main thread with
/// `pthread_exit` once it had started the work (Swift's async main drains the main queue with
/// `dispatch_main`), and that unwinds the thread's stack through the binary's unwind tables,
/// leaving 1 MB of them resident in every proxy. Nothing in the proxy runs on the main actor.
@main
struct WeftProxyEntry {
    static func main() {
        Task.detached {
            // Exits with the command's status on error; returns when the proxy has stopped.
            await ProxyCommand.main(nil)
            exit(EXIT_SUCCESS)
        }
        while true { pause() }
    }
}
