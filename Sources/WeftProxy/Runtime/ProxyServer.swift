import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import UnixSignals
import WeftFilter
import WeftTelemetry

/// The proxy process as a swift-service-lifecycle `Service`: binds the inbound, outbound and
/// admin listeners, reloads config on SIGHUP or when the file changes, and drains on shutdown.
public final class ProxyServer: Service, AdminState, Sendable {
    private let configPath: String?
    private let loader: ConfigLoader
    private let logger: Logger
    private let group: any EventLoopGroup
    private let pools: UpstreamPools
    /// Metric series and open taps; shared with the metrics and tap filters of every config version.
    public let telemetry: Telemetry
    private let state = NIOLockedValueBox(RuntimeState())
    private let watchInterval: TimeAmount?

    private struct RuntimeState {
        var store: SnapshotStore?
        var ready = false
        var reloads = 0
        var rejectedReloads = 0
        var lastReloadError: String?
        /// The bootstrap file's text as last loaded (the watcher reloads when it changes).
        var lastSeenSource: String?
        /// The controller's latest applied snapshot, laid over the bootstrap file on every load.
        var pushed: PushedConfig?
        var controller = ControllerLink()
        /// Where the admin and tap listeners really listen (config may say port 0).
        var adminAddress: String?
        var tapAddress: String?
    }

    /// - Parameters:
    ///   - configPath: the YAML file; `nil` runs with every default.
    ///   - registry: the filters config may name (built-ins and compiled-in plugins).
    ///   - telemetry: the one whose metrics and tap hub the registry's `metrics` and `tap` filters use.
    ///   - watchInterval: how often the file is checked for changes; `nil` reloads on SIGHUP only.
    public init(configPath: String?, registry: FilterRegistry, telemetry: Telemetry, logger: Logger, group: any EventLoopGroup,
                watchInterval: TimeAmount? = .seconds(1)) {
        self.configPath = configPath
        self.telemetry = telemetry
        self.loader = ConfigLoader(registry: registry)
        self.logger = logger
        self.group = group
        self.pools = UpstreamPools(group: group)
        self.watchInterval = watchInterval
    }

    /// Loads and validates the config without serving (`--check`).
    public func check() throws(ConfigError) -> ProxySnapshot {
        try loadSnapshot()
    }

    private func loadSnapshot() throws(ConfigError) -> ProxySnapshot {
        try loadSnapshot(pushed: state.withLockedValue { $0.pushed }).snapshot
    }

    /// The bootstrap file (or the defaults) with `pushed` laid over it; also the file's text.
    private func loadSnapshot(pushed: PushedConfig?) throws(ConfigError) -> (snapshot: ProxySnapshot, fileText: String) {
        guard let configPath else {
            return (try loader.load(text: "{}", file: "<defaults>", pushed: pushed), "{}")
        }
        let text = try ConfigLoader.read(configPath)
        return (try loader.load(text: text, file: configPath, pushed: pushed), text)
    }

    public func run() async throws {
        let (snapshot, fileText) = try loadSnapshot(pushed: nil)
        let store = SnapshotStore(snapshot)
        state.withLockedValue {
            $0.store = store
            $0.lastSeenSource = fileText
        }
        let quiesce = ServerQuiescingHelper(group: group)
        let config = snapshot.config

        var channels: [any Channel] = []
        do {
            if config.inbound.enabled {
                channels.append(try await bindProxy(.inbound, config.inbound.address, store: store, quiesce: quiesce))
            }
            if config.outbound.enabled {
                channels.append(try await bindProxy(.outbound, config.outbound.address, store: store, quiesce: quiesce))
            }
            let admin = try await bindAdmin(config.admin.address, quiesce: quiesce)
            channels.append(admin)
            let adminAddress = Self.describe(admin.localAddress, fallback: config.admin.address)
            state.withLockedValue { $0.adminAddress = adminAddress }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        let tapServer: TapListener?
        if config.tap.enabled {
            do {
                tapServer = try await TapListener.start(config.tap.address, hub: telemetry.tap, group: group, logger: logger)
            } catch {
                for channel in channels { try? await channel.close() }
                throw error
            }
        } else {
            tapServer = nil
        }
        state.withLockedValue { $0.tapAddress = tapServer?.address }
        state.withLockedValue { $0.ready = true }
        logger.info("weft-proxy ready", metadata: ["version": "\(snapshot.version)", "config": "\(configPath ?? "<defaults>")"])

        await withDiscardingTaskGroup { tasks in
            tasks.addTask { await self.reloadOnSignal() }
            if let interval = self.watchInterval, self.configPath != nil {
                tasks.addTask { await self.watchFile(every: interval) }
            }
            if let controller = config.controller.resolve() {
                let client = ControllerClient(address: controller, proxy: self, group: self.group, logger: self.logger)
                tasks.addTask { await client.run() }
            }
            // Returns when SIGTERM (or the service group) starts a graceful shutdown.
            try? await gracefulShutdown()
            await tapServer?.stop()
            tasks.cancelAll()
        }
        state.withLockedValue { $0.ready = false }
        await drain(quiesce: quiesce, gracePeriod: store.current.config.shutdownGracePeriod)
    }

    // MARK: Listeners

    private func bindProxy(_ direction: TrafficDirection, _ address: ListenAddress, store: SnapshotStore,
                           quiesce: ServerQuiescingHelper) async throws -> any Channel {
        let listener = ListenerContext(direction: direction, store: store, pools: pools, logger: logger, telemetry: telemetry)
        return try await bind(direction.rawValue, address, quiesce: quiesce) { channel in
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ConnectionMetricsHandler(metrics: listener.clientTCP))
            try sync.addHandler(ProtocolDetectHandler(listener: listener))
        }
    }

    private func bindAdmin(_ address: ListenAddress, quiesce: ServerQuiescingHelper) async throws -> any Channel {
        try await bind("admin", address, quiesce: quiesce) { channel in
            let sync = channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline()
            try sync.addHandler(AdminHandler(state: self))
        }
    }

    /// Binds one listener whose connections drain with the others on shutdown.
    private func bind(_ name: String, _ address: ListenAddress, quiesce: ServerQuiescingHelper,
                      configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
            .bind(host: address.host, port: address.port)
            .get()
        logger.info("listening", metadata: ["listener": "\(name)", "address": "\(Self.describe(channel.localAddress, fallback: address))"])
        return channel
    }

    private static func describe(_ address: SocketAddress?, fallback: ListenAddress) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return fallback.description }
        return ListenAddress(host: ip, port: port).description
    }

    // MARK: Reload

    /// Loads the file again and swaps the new snapshot in; a bad file is rejected and the
    /// snapshot in force stays.
    @discardableResult
    public func reload(reason: String) -> Bool {
        install(pushed: state.withLockedValue { $0.pushed }, reason: reason) == nil
    }

    /// Applies a snapshot from the controller over the bootstrap file. Returns nil when applied
    /// (or already in force), else the error; the config in force stays.
    public func apply(_ pushed: PushedConfig) -> ConfigError? {
        guard state.withLockedValue({ $0.store != nil }) else {
            return ConfigError(file: "controller snapshot \(pushed.version)", field: "", message: "the proxy is not serving yet")
        }
        // Only an applied snapshot is recorded: the same one again (a controller restart) changes nothing.
        if state.withLockedValue({ $0.pushed == pushed }) { return nil }
        return install(pushed: pushed, reason: "controller snapshot")
    }

    private func install(pushed: PushedConfig?, reason: String) -> ConfigError? {
        guard let store = state.withLockedValue({ $0.store }) else { return nil }
        do {
            let (snapshot, fileText) = try loadSnapshot(pushed: pushed)
            let old = store.replace(with: snapshot)
            telemetry.metrics.configReloads.increment()
            state.withLockedValue {
                $0.reloads += 1
                $0.lastReloadError = nil
                $0.lastSeenSource = fileText
                $0.pushed = pushed
            }
            if old.config.inbound.address != snapshot.config.inbound.address
                || old.config.outbound.address != snapshot.config.outbound.address
                || old.config.admin.address != snapshot.config.admin.address {
                logger.warning("listener addresses changed in config; they take effect after a restart")
            }
            logger.info("config reloaded", metadata: ["reason": "\(reason)", "version": "\(snapshot.version)", "previous": "\(old.version)"])
            return nil
        } catch {
            telemetry.metrics.configRejections.increment()
            state.withLockedValue {
                $0.rejectedReloads += 1
                $0.lastReloadError = error.description
            }
            logger.error("config rejected, keeping version \(store.current.version): \(error.description)")
            return error
        }
    }

    /// The identity and addresses the controller needs to know this proxy by.
    var announcement: ControllerClient.Announcement {
        let (snapshot, admin, tap) = state.withLockedValue { ($0.store?.current, $0.adminAddress, $0.tapAddress) }
        let config = snapshot?.config ?? ProxyConfig()
        let identity = snapshot?.identity ?? config.identity.resolve()
        return ControllerClient.Announcement(
            identity: identity,
            adminAddress: admin ?? config.admin.address.description,
            tapAddress: tap ?? "",
            configVersion: snapshot?.version ?? "")
    }

    /// Records the link's state for `/config`.
    func controllerLink(_ update: (inout ControllerLink) -> Void) {
        state.withLockedValue { update(&$0.controller) }
    }

    private func reloadOnSignal() async {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals {
            if Task.isCancelled { return }
            reload(reason: "SIGHUP")
        }
    }

    private func watchFile(every interval: TimeAmount) async {
        guard let configPath else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .nanoseconds(interval.nanoseconds))
            guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else { continue }
            let changed = state.withLockedValue { state -> Bool in
                guard state.lastSeenSource != text else { return false }
                state.lastSeenSource = text
                return true
            }
            if changed { reload(reason: "file changed") }
        }
    }

    // MARK: Drain

    private func drain(quiesce: ServerQuiescingHelper, gracePeriod: ConfigDuration) async {
        logger.info("draining: no new connections; waiting for requests in flight", metadata: ["gracePeriod": "\(gracePeriod)"])
        let promise = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        let drained = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await promise.futureResult.get()) != nil
            }
            group.addTask {
                try? await Task.sleep(for: .nanoseconds(gracePeriod.nanoseconds))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        try? await pools.closeAll().get()
        if drained {
            logger.info("drained; exiting")
        } else {
            logger.warning("grace period over with requests still in flight; exiting")
        }
    }

    // MARK: AdminState

    public var isReady: Bool { state.withLockedValue { $0.ready } }

    func metricsText() -> String {
        let tap = telemetry.tap
        return telemetry.metrics.exposition(extra: """
            # HELP weft_tap_active Taps open on this proxy.
            # TYPE weft_tap_active gauge
            weft_tap_active \(tap.activeTaps)
            # HELP weft_tap_dropped_events_total Tap events dropped because a tapper read too slowly.
            # TYPE weft_tap_dropped_events_total counter
            weft_tap_dropped_events_total \(tap.droppedEvents)

            """)
    }

    func configReport() -> ConfigReport {
        let (store, reloads, rejected, lastError, link) = state.withLockedValue {
            ($0.store, $0.reloads, $0.rejectedReloads, $0.lastReloadError, $0.controller)
        }
        guard let snapshot = store?.current else {
            return ConfigReport(version: "", loadedAt: "", file: configPath, reloads: 0, rejectedReloads: 0, backends: [:], source: "")
        }
        let config = snapshot.config
        var backends: [String: [String]] = [:]
        for (name, backend) in snapshot.backends {
            backends[name] = backend.endpoints.map(\.description)
        }
        return ConfigReport(
            version: snapshot.version,
            loadedAt: ISO8601DateFormatter().string(from: snapshot.loadedAt),
            file: configPath,
            reloads: reloads,
            rejectedReloads: rejected,
            lastReloadError: lastError,
            inbound: config.inbound.enabled
                ? .init(address: config.inbound.address.description, filters: snapshot.inboundChain.allNames, app: config.inbound.app.description) : nil,
            outbound: config.outbound.enabled
                ? .init(address: config.outbound.address.description, filters: snapshot.outboundChain.allNames, app: nil) : nil,
            backends: backends,
            controller: config.controller.resolve().map { address in
                .init(address: address.description, connected: link.connected, lastError: link.lastError,
                      lastSnapshot: link.lastSnapshot)
            },
            source: snapshot.source)
    }
}

