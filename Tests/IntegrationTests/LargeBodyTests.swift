import Foundation
import Testing

extension Integration {
    /// Bodies stream: 200 MB each way and the proxy's peak RSS stays bounded.
    @Suite struct LargeBodies {
        static let size = 200 * 1024 * 1024

        @Test func twoHundredMegabytesDownloadAndUploadWithBoundedMemory() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let download = try await curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://\(proxy.inbound)/download?bytes=\(Self.size)"],
                                          timeout: .seconds(240))
            #expect(download.stdout == "200 \(Self.size)", "\(download.stderr)")

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-upload-\(UUID().uuidString)")
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: file) }
            let handle = try FileHandle(forWritingTo: file)
            let block = Data(repeating: 0x61, count: 1 << 20)
            for _ in 0..<(Self.size >> 20) { handle.write(block) }
            try handle.close()
            let upload = try await curl(["--data-binary", "@\(file.path)", "-H", "content-type: application/octet-stream", "http://\(proxy.inbound)/upload"],
                                        timeout: .seconds(240))
            let uploaded = try JSONSerialization.jsonObject(with: Data(upload.stdout.utf8)) as? [String: Any]
            #expect(uploaded?["bytes"] as? Int == Self.size, "\(upload.stdout) \(upload.stderr)")

            let peakKiB = try proxy.peakRSSKiB()
            #expect(peakKiB < 64 * 1024, "peak RSS \(peakKiB) KiB while moving 400 MB")
        }
    }
}
