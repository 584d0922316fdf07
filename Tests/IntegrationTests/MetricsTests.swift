import Foundation
import Testing

import Platform
@testable import ObjectStore

/// `/metrics` of a real mount, read by prometheus_client's parser (scripts/parse-metrics.py) and checked
/// against `status --json` after a known workload.
@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"))
struct MetricsTests {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// One HTTP exchange with the daemon's endpoint.
    static func http(_ method: String, _ url: String, body: String? = nil) async throws -> HTTPResponse {
        let request = HTTPRequest(method: method, url: url, headers: [], body: body.map { .bytes(Array($0.utf8)) } ?? .empty)
        return try await withCheckedThrowingContinuation { c in
            Servers.bench.transport.submit(request, sink: .collect(limit: 16 << 20)) { r in
                c.resume(with: r.mapError { S3Client.error(from: $0) })
            }
        }
    }

    /// Scrapes and parses; the parser's failure fails the test with its complaint.
    static func scrape(_ address: String) async throws -> [Sample] {
        let response = try await http("GET", "http://\(address)/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true, "\(response.headers)")
        let file = NSTemporaryDirectory() + "lakecache-metrics-\(UUID().uuidString.prefix(8))"
        try Data(response.body).write(to: URL(fileURLWithPath: file))
        defer { unlink(file) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/parse-metrics.py").path
        let r = spawn("/bin/sh", ["-c", "python3 \(script) < \(file)"])
        try #require(r.status == 0, "the Prometheus parser refused the page: \(r.stderr)\n\(String(decoding: response.body.prefix(2000), as: UTF8.self))")
        // promtool (Debian's prometheus package) also lints names, units, suffixes and HELP lines.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let lint = spawn("/bin/sh", ["-c", "/usr/bin/promtool check metrics < \(file)"], mergeOutput: true)
            #expect(lint.status == 0 && lint.stdout.isEmpty, "promtool check metrics: \(lint.stdout)")
        }
        return try r.stdout.split(separator: "\n").map { line in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Sample(name: o["name"] as? String ?? "", labels: o["labels"] as? [String: String] ?? [:], value: (o["value"] as? NSNumber)?.doubleValue ?? .nan)
        }
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }?.value
    }

    static func number(_ json: [String: Any], _ path: [String]) -> Double {
        var v: Any? = json
        for p in path { v = (v as? [String: Any])?[p] }
        return (v as? NSNumber)?.doubleValue ?? .nan
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    static func sum(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { k, v in s.labels[k] == v } }.reduce(0) { $0 + $1.value }
    }

    /// The known workload: six 3 MiB objects over 1 MiB blocks and an 8 MiB memory tier (eight slots, so
    /// eighteen cold blocks evict at least ten), the first GET of one object answered 503 once (a retry),
    /// every GET under `denied/` answered 403 (a failed read), and a 1 MiB file written with sync close.
    @Test func aScrapeParsesAndAgreesWithStatus() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "metrics")
        try await putMany(Servers.bench, bucket: bucket, count: 6) { i in ("data/\(i).bin", patternBytes(3 << 20, seed: UInt64(i + 7))) }
        _ = try await Servers.bench.putObject(bucket: bucket, key: "denied/x.bin", body: .bytes(patternBytes(4096, seed: 5)), options: PutOptions())
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": "503", "op": "GetObject", "key_prefix": "data/0.bin", "nth": [1]],
            ["action": "403", "op": "GetObject", "key_prefix": "denied/"],
        ])
        let m = TestMount(bucket: bucket, endpoint: bench, extra: [
            "--metrics-address", "127.0.0.1:0", "--write-mode", "sync", "--block-size", "1M", "--memory-cache", "8M",
        ])
        try await withMount(m) { m in
            let mountpoint = m.mountpoint
            let (ok, deniedFailed) = try await offPool { () throws -> (Bool, Bool) in
                var ok = true
                for i in 0..<6 { ok = try readFile(mountpoint + "/data/\(i).bin") == patternBytes(3 << 20, seed: UInt64(i + 7)) && ok }
                // The same files again: from the disk tier (the memory tier holds only eight blocks).
                for i in 0..<3 { _ = try readFile(mountpoint + "/data/\(i).bin") }
                let denied = (try? readFile(mountpoint + "/denied/x.bin")) == nil
                ok = FileManager.default.createFile(atPath: mountpoint + "/out.bin", contents: Data(patternBytes(1 << 20, seed: 99))) && ok
                _ = try FileManager.default.contentsOfDirectory(atPath: mountpoint + "/data")
                return (ok, denied)
            }
            #expect(ok, "the workload read or wrote wrong bytes")
            #expect(deniedFailed, "a read answered 403 failed")

            let before = try m.status()
            let address = try #require((before["metrics"] as? [String: Any])?["address"] as? String)
            #expect(address.hasPrefix("127.0.0.1:") && !address.hasSuffix(":0"), "status names the port it listens on: \(address)")
            let samples = try await Self.scrape(address)
            let after = try m.status()
            let served = try await BenchControl.requests(bucket: bucket)

            /// A counter the daemon keeps moving on its own (prefetch, background work) lies between two looks.
            func between(_ metric: Double?, _ path: [String], _ what: String) {
                let lo = Self.number(before, path), hi = Self.number(after, path)
                #expect(metric.map { $0 >= lo && $0 <= hi } == true, "\(what): metric \(metric ?? .nan), status \(lo)...\(hi)")
            }
            between(Self.value(samples, "lakecache_cache_hits_total", ["tier": "memory"]), ["cache", "memory", "hits"], "memory hits")
            between(Self.value(samples, "lakecache_cache_misses_total", ["tier": "memory"]), ["cache", "memory", "misses"], "memory misses")
            between(Self.value(samples, "lakecache_cache_hits_total", ["tier": "disk"]), ["cache", "disk", "hits"], "disk hits")
            between(Self.value(samples, "lakecache_cache_bytes", ["tier": "disk"]), ["cache", "disk", "bytes"], "disk bytes")
            #expect(Self.value(samples, "lakecache_cache_capacity_bytes", ["tier": "memory"]) == Self.number(before, ["cache", "memory", "capacity"]))

            // The process's memory: resident, with the live heap in it, the same figures status shows.
            let rss = Self.number(before, ["process", "rss_bytes"]), peak = Self.number(before, ["process", "peak_rss_bytes"])
            let heap = Self.number(before, ["process", "heap_bytes"])
            #expect(rss > 0 && peak >= rss && heap > 1_048_576, "status process: rss \(rss), peak \(peak), heap \(heap)")
            let rssMetric = Self.value(samples, "lakecache_resident_memory_bytes") ?? .nan
            let heapMetric = Self.value(samples, "lakecache_heap_bytes") ?? .nan
            #expect(rssMetric > rss / 2 && rssMetric < rss * 2, "resident metric \(rssMetric) against status \(rss)")
            #expect(heapMetric > heap / 2 && heapMetric < heap * 2, "heap metric \(heapMetric) against status \(heap)")

            // Evictions of both tiers, one family; eighteen cold blocks through eight memory slots evict ten.
            let memoryEvictions = try #require(Self.value(samples, "lakecache_cache_evictions_total", ["tier": "memory"]))
            #expect(memoryEvictions >= 10, "memory evictions \(memoryEvictions)")
            between(memoryEvictions, ["cache", "memory", "evictions"], "memory evictions")
            between(Self.value(samples, "lakecache_cache_evictions_total", ["tier": "disk"]), ["cache", "disk", "evictions"], "disk evictions")

            // Store-level traffic by operation: each series is the status figure, and the known workload.
            let ops = ["GetObject", "PutObject", "ListObjectsV2"]
            for op in ops {
                for (metric, field) in [
                    ("lakecache_backend_attempts_total", "requests"), ("lakecache_backend_retries_total", "retries"),
                    ("lakecache_backend_received_bytes_total", "bytes_in"), ("lakecache_backend_sent_bytes_total", "bytes_out"),
                ] {
                    between(Self.value(samples, metric, ["operation": op]), ["backend", "operations", op, field], "\(metric){operation=\(op)}")
                }
            }
            between(Self.sum(samples, "lakecache_backend_received_bytes_total"), ["backend", "bytes_in"], "bytes in, summed over operations")
            between(Self.sum(samples, "lakecache_backend_sent_bytes_total"), ["backend", "bytes_out"], "bytes out, summed over operations")
            between(Self.sum(samples, "lakecache_backend_retries_total"), ["backend", "retries"], "retries, summed over operations")
            let getAttempts = try #require(Self.value(samples, "lakecache_backend_attempts_total", ["operation": "GetObject"]))
            #expect(getAttempts == Double(served["GetObject"] ?? -1), "GET attempts \(getAttempts), the store served \(served)")
            #expect((Self.value(samples, "lakecache_backend_retries_total", ["operation": "GetObject"]) ?? 0) >= 1, "the 503 was retried")
            #expect(Self.value(samples, "lakecache_backend_retries_total", ["operation": "PutObject"]) == 0)
            #expect((Self.value(samples, "lakecache_backend_received_bytes_total", ["operation": "GetObject"]) ?? 0) >= Double(18 << 20), "six 3 MiB objects came in")
            #expect((Self.value(samples, "lakecache_backend_sent_bytes_total", ["operation": "PutObject"]) ?? 0) >= Double(1 << 20), "a 1 MiB file went out")
            #expect(Self.value(samples, "lakecache_backend_sent_bytes_total", ["operation": "GetObject"]) == 0, "a GET sends no body")
            #expect((Self.value(samples, "lakecache_backend_received_bytes_total", ["operation": "ListObjectsV2"]) ?? 0) > 0, "listings came in as XML")

            // Per link: calls and failed calls by operation.
            let links = try #require(before["links"] as? [[String: Any]])
            let linksAfter = try #require(after["links"] as? [[String: Any]])
            let gets = Self.number(links[0], ["backend", "requests", "GetObject"])
            #expect(gets >= 6)
            let metricGets = try #require(Self.value(samples, "lakecache_backend_requests_total", ["link": "/", "operation": "GetObject"]))
            #expect(metricGets >= gets && metricGets <= Self.number(linksAfter[0], ["backend", "requests", "GetObject"]))
            // One attempt per call plus one per retry: the link is the client's only user.
            #expect(getAttempts == metricGets + (Self.value(samples, "lakecache_backend_retries_total", ["operation": "GetObject"]) ?? .nan))
            let puts = Self.number(links[0], ["backend", "requests", "PutObject"])
            #expect(puts >= 1 && Self.value(samples, "lakecache_backend_requests_total", ["link": "/", "operation": "PutObject"]) == puts)
            let getErrors = try #require(Self.value(samples, "lakecache_backend_errors_total", ["link": "/", "operation": "GetObject"]))
            #expect(getErrors >= 1, "the 403 is an error of the link's GetObject")
            #expect(getErrors == Self.number(links[0], ["backend", "errors_by_operation", "GetObject"]))
            #expect(Self.value(samples, "lakecache_backend_errors_total", ["link": "/", "operation": "PutObject"]) == 0)
            #expect(Self.sum(samples, "lakecache_backend_errors_total", ["link": "/"]) == Self.number(links[0], ["backend", "errors"]))
            #expect(Self.number(before, ["backend", "operations", "GetObject", "errors"]) == getErrors, "the store's count of failed GETs is the link's")

            #expect(Self.value(samples, "lakecache_uploads_pending", ["link": "/"]) == 0)
            #expect(Self.value(samples, "lakecache_build_info", ["version": LakeCacheVersion.current]) == 1)
            // Latency histograms, recorded as requests happen.
            #expect((Self.value(samples, "lakecache_backend_request_duration_seconds_count", ["operation": "GetObject"]) ?? 0) >= gets)
            #expect((Self.value(samples, "lakecache_backend_first_byte_seconds_count", ["operation": "GetObject"]) ?? 0) >= gets)
            #expect((Self.value(samples, "lakecache_fuse_operation_duration_seconds_count", ["operation": "read"]) ?? 0) >= 9)
            #expect((Self.value(samples, "lakecache_fuse_operation_duration_seconds_count", ["operation": "lookup"]) ?? 0) >= 1)
            // Read-only opens are FOPEN_NOFLUSH: the nine closes of files read send no FLUSH; the file written
            // (through a temporary file and a rename, as Foundation writes) sends one per writable close.
            let flushes = Self.value(samples, "lakecache_fuse_operation_duration_seconds_count", ["operation": "flush"]) ?? 0
            #expect(flushes >= 1 && flushes <= 2, "\(flushes) FLUSH requests for one file written and nine read")
            #expect(Self.value(samples, "lakecache_fuse_operation_duration_seconds_bucket", ["operation": "read", "le": "+Inf"]) != nil)
            // No object key or path is a label value: only link paths are.
            for s in samples {
                for (k, v) in s.labels { #expect(!v.contains("data/") && !v.contains(".bin") && !v.contains("denied"), "\(s.name){\(k)=\(v)}") }
            }

            // What else arrives at the port is refused, and the endpoint keeps serving.
            #expect(try await Self.http("POST", "http://\(address)/metrics", body: "x").status == 413)
            #expect(try await Self.http("GET", "http://\(address)/").status == 404)
            #expect(try await Self.http("DELETE", "http://\(address)/metrics").status == 405)
            #expect(try await Self.http("GET", "http://\(address)/metrics").status == 200)
        }
    }

    @Test func metricsShareTheEventsServerOnOneAddress() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "metrics-events")
        let token = NSTemporaryDirectory() + "lakecache-mtoken-\(UUID().uuidString.prefix(8))"
        try "0123456789abcdef0123456789abcdef\n".write(toFile: token, atomically: true, encoding: .utf8)
        chmod(token, 0o600)
        defer { unlink(token) }
        let m = TestMount(bucket: bucket, endpoint: bench, extra: [
            "--metrics-address", "127.0.0.1:0", "--events-address", "127.0.0.1:0", "--events-token-file", token,
        ])
        try await withMount(m) { m in
            let metrics = try #require(try m.status()["metrics"] as? [String: Any])
            #expect(metrics["shared_with_events"] as? Bool == true)
            let address = try #require(metrics["address"] as? String)
            let samples = try await Self.scrape(address)
            #expect(Self.value(samples, "lakecache_events_pending") == 0)
            // The events endpoint still refuses a POST without its token.
            #expect(try await Self.http("POST", "http://\(address)/", body: "{}").status == 401)
        }
    }
}
