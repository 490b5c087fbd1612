import NIOCore

/// A client connection's idle timeout, with one scheduled task per idle period rather than one per
/// read or request: activity only moves ``lastActivity``; when the task fires it fires again for
/// what is left of the period, or for a whole period while the connection is busy, and calls
/// `onIdle` once the connection has been idle for the timeout. Confined to the connection's event loop.
final class IdleTimer {
    let timeout: TimeAmount
    /// The last read, write or finished request: the idle period counts from here.
    var lastActivity = NIODeadline.now()
    private var scheduled: Scheduled<Void>?
    private let isBusy: () -> Bool
    private let onIdle: () -> Void

    /// `isBusy` and `onIdle` are the connection's; capture it weakly (the timer is its property).
    init(timeout: TimeAmount, isBusy: @escaping () -> Bool, onIdle: @escaping () -> Void) {
        self.timeout = timeout
        self.isBusy = isBusy
        self.onIdle = onIdle
    }

    func start(on eventLoop: any EventLoop) {
        schedule(in: timeout, on: eventLoop)
    }

    func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }

    private func schedule(in delay: TimeAmount, on eventLoop: any EventLoop) {
        scheduled = eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            self?.fired(on: eventLoop)
        }
    }

    private func fired(on eventLoop: any EventLoop) {
        if isBusy() {
            schedule(in: timeout, on: eventLoop)
            return
        }
        let idleFor = NIODeadline.now() - lastActivity
        if idleFor >= timeout {
            scheduled = nil
            onIdle()
        } else {
            schedule(in: timeout - idleFor, on: eventLoop)
        }
    }
}
