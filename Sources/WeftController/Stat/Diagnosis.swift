import Foundation

/// Where failures start: the edges (and workloads) whose failures are their own, told apart from
/// those that only pass on a callee's failures. Computed from stat, per workload.
public struct Diagnosis: Codable, Sendable {
    /// A place failures start.
    public struct Origin: Codable, Sendable {
        /// The failing edge, or nil when the workload fails with no failing callee (its own bug).
        public var edge: EdgeRow?
        /// The workload that answers with failures (the callee of `edge`, or the workload itself).
        public var workload: String
        public var namespace: String
        /// The same callee called by others, and how that goes (evidence it is the call, not the callee).
        public var otherCallers: [EdgeRow]
        /// Where these failures show further up: callers of the edge's source that fail too.
        public var surfacesAt: [EdgeRow]
        /// Live failing requests on the origin, when tapped.
        public var samples: [FailedRequest]
    }

    /// A failed request seen by tap.
    public struct FailedRequest: Codable, Sendable {
        public var method: String
        public var authority: String
        public var path: String
        public var status: Int?
        public var grpcStatus: Int?
    }

    public var window: Double
    public var origins: [Origin]
    /// Failing edges whose failures come from further down (the callee has failing calls itself).
    public var propagated: [EdgeRow]
    /// Every edge considered.
    public var edges: [EdgeRow]

    /// An edge or workload is failing when it lost at least one request and under 99% succeeded.
    static func failing(successes: Int, requests: Int) -> Bool {
        requests > 0 && successes < requests && Double(successes) / Double(requests) < 0.99
    }

    /// Finds the origins among `edges` (workload to workload) and `workloads` (their inbound stat),
    /// limited to the part of the graph `scope` reaches (a workload name and what it calls, and the
    /// calls into those; nil: everything in the namespace).
    public static func analyze(edges: [EdgeRow], workloads: [StatRow], scope: (namespace: String?, name: String?), window: Double) -> Diagnosis {
        func key(_ namespace: String, _ name: String) -> String { "\(namespace)/\(name)" }
        let failingEdges = edges.filter { failing(successes: $0.successes, requests: $0.requests) }
        var outgoing: [String: [EdgeRow]] = [:]
        var incoming: [String: [EdgeRow]] = [:]
        for edge in edges {
            outgoing[key(edge.sourceNamespace, edge.source), default: []].append(edge)
            incoming[key(edge.destinationNamespace, edge.destination), default: []].append(edge)
        }
        func hasFailingCalls(_ workload: String) -> Bool {
            (outgoing[workload] ?? []).contains { failing(successes: $0.successes, requests: $0.requests) }
        }
        // The part of the graph reachable from the scope, following calls.
        var reachable: Set<String>?
        if let name = scope.name {
            var seen: Set<String> = []
            var queue = workloads.filter { $0.name == name && (scope.namespace == nil || $0.namespace == scope.namespace) }
                .map { key($0.namespace, $0.name) }
            if queue.isEmpty, let namespace = scope.namespace { queue = [key(namespace, name)] }
            while let next = queue.popLast() {
                guard seen.insert(next).inserted else { continue }
                for edge in outgoing[next] ?? [] { queue.append(key(edge.destinationNamespace, edge.destination)) }
            }
            reachable = seen
        }
        func inScope(_ namespace: String, _ name: String) -> Bool {
            if let reachable { return reachable.contains(key(namespace, name)) }
            return scope.namespace == nil || scope.namespace == namespace
        }
        /// An edge matters when it starts or ends in scope (asked about a callee, its callers count).
        func inScope(_ edge: EdgeRow) -> Bool {
            inScope(edge.sourceNamespace, edge.source) || inScope(edge.destinationNamespace, edge.destination)
        }

        var origins: [Origin] = []
        var propagated: [EdgeRow] = []
        for edge in failingEdges where inScope(edge) {
            let callee = key(edge.destinationNamespace, edge.destination)
            if hasFailingCalls(callee) {
                propagated.append(edge)
                continue
            }
            let others = (incoming[callee] ?? []).filter { !($0.source == edge.source && $0.sourceNamespace == edge.sourceNamespace) }
            let surfaces = (incoming[key(edge.sourceNamespace, edge.source)] ?? []).filter { failing(successes: $0.successes, requests: $0.requests) }
            origins.append(Origin(edge: edge, workload: edge.destination, namespace: edge.destinationNamespace,
                                  otherCallers: others, surfacesAt: surfaces, samples: []))
        }
        // A workload failing with no failing call of its own, and no failing edge into it already
        // naming it: the failures are its own.
        for row in workloads where inScope(row.namespace, row.name) && failing(successes: row.successes, requests: row.requests) {
            let name = key(row.namespace, row.name)
            guard !hasFailingCalls(name), !origins.contains(where: { key($0.namespace, $0.workload) == name }) else { continue }
            let callers = incoming[name] ?? []
            origins.append(Origin(edge: nil, workload: row.name, namespace: row.namespace, otherCallers: callers,
                                  surfacesAt: [], samples: []))
        }
        return Diagnosis(window: window, origins: origins, propagated: propagated,
                         edges: edges.filter(inScope))
    }
}
