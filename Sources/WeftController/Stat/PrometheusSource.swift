import AsyncHTTPClient
import Foundation
import NIOCore

/// Stat from a real Prometheus that scrapes the proxies: the same series read at the window's
/// start and end with instant queries, turned into increases exactly as the embedded path does.
public struct PrometheusSource: MetricsSource {
    public let url: String
    let client: HTTPClient

    public init(url: String, client: HTTPClient) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.client = client
    }

    public var name: String { "Prometheus at \(url)" }

    public func window(_ seconds: Double) async throws -> MetricsWindow {
        let now = Date().timeIntervalSince1970
        async let end = query(at: now)
        async let start = query(at: now - seconds)
        // Prometheus adds the target's `job` and `instance`: series are told apart with them, grouped without them.
        let endSamples = try await end
        let covered = MetricsWindow.covered(window: seconds, now: Date(timeIntervalSince1970: now), samples: endSamples)
        return MetricsWindow.from(start: try await start, end: endSamples, seconds: covered) { $0.labels }
            .withoutTargetLabels()
    }

    private func query(at time: Double) async throws -> [Sample] {
        let names = Exposition.statNames.sorted().joined(separator: "|")
        var components = URLComponents(string: "\(url)/api/v1/query")!
        components.queryItems = [
            URLQueryItem(name: "query", value: "{__name__=~\"\(names)\"}"),
            URLQueryItem(name: "time", value: String(format: "%.3f", time)),
        ]
        guard let address = components.url?.absoluteString else { throw StatError.prometheus("bad URL \(url)") }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(HTTPClientRequest(url: address), timeout: .seconds(10))
        } catch {
            throw StatError.prometheus("cannot reach Prometheus at \(url): \(error)")
        }
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else {
            throw StatError.prometheus("Prometheus at \(url) answered \(response.status.code): \(String(buffer: body).prefix(200))")
        }
        struct Answer: Decodable {
            struct Data: Decodable {
                struct Series: Decodable {
                    var metric: [String: String]
                    var value: [ValueField]
                }
                var result: [Series]
            }
            var status: String
            var data: Data
        }
        let answer = try JSONDecoder().decode(Answer.self, from: Data(String(buffer: body).utf8))
        return answer.data.result.compactMap { series in
            var labels = series.metric
            guard let name = labels.removeValue(forKey: "__name__"), series.value.count == 2,
                  case .text(let text) = series.value[1], let value = Double(text) ?? (text == "+Inf" ? .infinity : nil) else { return nil }
            return Sample(name: name, labels: labels, value: value)
        }
    }

    /// Prometheus' `[time, "value"]` pairs.
    enum ValueField: Decodable {
        case number(Double)
        case text(String)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
        }
    }
}

extension MetricsWindow {
    func withoutTargetLabels() -> MetricsWindow {
        func strip(_ samples: [Sample]) -> [Sample] {
            samples.map { sample in
                var sample = sample
                sample.labels["job"] = nil
                sample.labels["instance"] = nil
                return sample
            }
        }
        return MetricsWindow(increases: strip(increases), gauges: strip(gauges), seconds: seconds)
    }
}
