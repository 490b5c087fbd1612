import NIOCore

/// The connection an ``IdleTimer`` watches.
protocol IdleWatched: AnyObject {
    /// Not idle, whatever the clock says: a request is in flight for a client still there to
    /// read its answer (as far as the connection can tell).
    var isBusy: Bool { get }
    /// Nothing happened for the timeout: close (or start closing) the connection.
    func becameIdle()
}

/// A client connection's idle timeout, with one scheduled task per idle period rather than one per
/// read or request: activity only moves ``lastActivity``; when the task fires it fires again for
/// what is left of the period, or for a whole period while the connection is busy, and tells the
/// connection once it has been idle for the timeout. Confined to the connection's event loop.
///
/// The scheduled task holds the connection strongly until it fires or ``cancel()``, which the
/// connection's handler calls when it leaves the pipeline: no weak reference on the request path
/// (see ``Exchange``).
final class IdleTimer {
    let timeout: TimeAmount
    /// The last read, write or finished request: the idle period counts from here.
    var lastActivity = NIODeadline.now()
    private var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func start(on eventLoop: any EventLoop, watching connection: any IdleWatched) {
        schedule(in: timeout, on: eventLoop, watching: connection)
    }

    func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }

    private func schedule(in delay: TimeAmount, on eventLoop: any EventLoop, watching connection: any IdleWatched) {
        scheduled = eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.fired(on: eventLoop, watching: connection)
        }
    }

    private func fired(on eventLoop: any EventLoop, watching connection: any IdleWatched) {
        scheduled = nil
        if connection.isBusy {
            schedule(in: timeout, on: eventLoop, watching: connection)
            return
        }
        let idleFor = NIODeadline.now() - lastActivity
        if idleFor >= timeout {
            connection.becameIdle()
        } else {
            schedule(in: timeout - idleFor, on: eventLoop, watching: connection)
        }
    }
}
