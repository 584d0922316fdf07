import Foundation
import Synchronization
import Testing

import Platform
@testable import ObjectStore

/// The S3 servers `scripts/with-test-servers.py` starts for `make test`, read from the environment.
enum Servers {
    static func endpoint(_ name: String) throws -> String {
        try #require(
            ProcessInfo.processInfo.environment[name],
            "\(name) is not set: run the integration tests through `make test` (scripts/with-test-servers.py starts the S3 servers)")
    }

    static func client(endpoint: String, key: String = "testing", secret: String = "testing", retry: RetryPolicy = RetryPolicy()) throws -> S3Client {
        var config = S3Configuration(endpoint: try Endpoint(parsing: endpoint), region: "us-east-1", credentials: Credentials(accessKeyID: key, secretAccessKey: secret))
        config.retry = retry
        return S3Client(configuration: config)
    }

    /// Shared clients; each lives for the whole test process, as a daemon's would.
    static let moto: S3Client = try! client(endpoint: endpoint("LAKECACHE_TEST_MOTO_ENDPOINT"))
    static let bench: S3Client = try! client(endpoint: endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), retry: fastRetry)
    static let seaweed: S3Client = try! client(endpoint: endpoint("LAKECACHE_TEST_SEAWEED_ENDPOINT"))

    /// Short backoff so fault tests stay quick; attempts stay at the production bound.
    static var fastRetry: RetryPolicy {
        var p = RetryPolicy()
        p.baseDelayNanoseconds = 1_000_000
        p.slowDownBaseDelayNanoseconds = 2_000_000
        return p
    }

    static func requireServers() throws {
        _ = try endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        _ = try endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        _ = try endpoint("LAKECACHE_TEST_SEAWEED_ENDPOINT")
    }
}

/// One of the S3 servers a parametrized test runs on; where they differ, the test asserts each one's answer.
enum TestServer: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case moto, bench, seaweed

    /// The name in test output, e.g. `putHeadGetWithMetadata(_:) seaweed`.
    var testDescription: String { rawValue }

    /// The shared client for this server.
    var client: S3Client {
        switch self {
        case .moto: Servers.moto
        case .bench: Servers.bench
        case .seaweed: Servers.seaweed
        }
    }
}

/// A bucket with a unique name, so parallel tests never share state or fault rules.
func freshBucket(_ client: S3Client, _ tag: String) async throws -> String {
    let name = "t-\(tag)-\(UUID().uuidString.prefix(8).lowercased())"
    try await client.createBucket(name)
    return name
}

/// Uploads `count` objects with `workers` in flight; `object(i)` names the i-th key and its bytes.
func putMany(_ s3: S3Client, bucket: String, count: Int, workers: Int = 16, object: @escaping @Sendable (Int) -> (String, [UInt8])) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<workers {
            group.addTask {
                for i in stride(from: w, to: count, by: workers) {
                    let (key, data) = object(i)
                    _ = try await s3.putObject(bucket: bucket, key: key, body: data.isEmpty ? .empty : .bytes(data), options: PutOptions())
                }
            }
        }
        try await group.waitForAll()
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
func patternBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

/// GET into a fresh buffer through the callback API; returns the bytes actually written.
func get(_ client: S3Client, _ request: GetObjectRequest, capacity: Int) async throws -> (bytes: [UInt8], result: GetObjectResult) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 4096)
    defer { buffer.deallocate() }
    let result = try await client.getObject(request, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<capacity]))
    return (Array(buffer[0..<result.bytesWritten]), result)
}

/// Expects `body` to throw an `ObjectStoreError` of `kind`; returns it.
@discardableResult
func expectError(_ kind: ObjectStoreError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> ObjectStoreError? {
    do {
        try await body()
        Issue.record("expected \(kind), got success", sourceLocation: sourceLocation)
    } catch let error as ObjectStoreError {
        #expect(error.kind == kind, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected ObjectStoreError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The bench store's control API: counters and fault rules.
enum BenchControl {
    static func call(_ method: String, _ path: String, json: String? = nil) async throws -> [UInt8] {
        let base = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let request = HTTPRequest(method: method, url: base + path, headers: [(name: "Content-Type", value: "application/json")], body: json.map { .bytes(Array($0.utf8)) } ?? .empty)
        let response: HTTPResponse = try await withCheckedThrowingContinuation { c in
            Servers.bench.transport.submit(request, sink: .collect(limit: 1 << 24)) { r in
                c.resume(with: r.mapError { S3Client.error(from: $0) })
            }
        }
        #expect((200..<300).contains(response.status), "bench control \(path) answered \(response.status)")
        return response.body
    }

    /// Replaces the fault rules that apply to `bucket` (and only to it).
    static func setFaults(bucket: String, _ rules: [[String: Any]]) async throws {
        let data = try JSONSerialization.data(withJSONObject: ["rules": rules])
        _ = try await call("POST", "/_bench/faults?bucket=\(bucket)", json: String(decoding: data, as: UTF8.self))
    }

    /// Bytes the store sent for one bucket (object bodies and XML).
    static func bytesOut(bucket: String) async throws -> Int {
        let body = try await call("GET", "/_bench/stats")
        let json = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        let mine = (json?["buckets"] as? [String: Any])?[bucket] as? [String: Any]
        return (mine?["bytes_out"] as? Int) ?? 0
    }

    /// Requests by operation for one bucket.
    static func requests(bucket: String) async throws -> [String: Int] {
        let body = try await call("GET", "/_bench/stats")
        let json = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        let buckets = json?["buckets"] as? [String: Any]
        let mine = buckets?[bucket] as? [String: Any]
        return (mine?["requests"] as? [String: Int]) ?? [:]
    }
}

/// Directories to remove when the test process exits, for helpers that cannot know when a test is done.
final class ScratchDirectories: Sendable {
    static let shared = ScratchDirectories()
    private let paths = Mutex<[String]>([])

    private init() {
        atexit {
            // Only directories nothing is mounted on: removing files under a live mount would delete objects.
            for p in ScratchDirectories.shared.paths.withLock({ $0 }) where !isMounted(p) {
                try? FileManager.default.removeItem(atPath: p)
            }
        }
    }

    func add(_ path: String) { paths.withLock { $0.append(path) } }
}
