import CoreMetrics
import Events
import Filesystem
import HTTPServing
import Metrics
import ObjectStore
import Platform
import Prometheus
import Synchronization

/// The Prometheus exposition of a mount at `/metrics`, with swift-prometheus writing the text format.
///
/// Two registries make one page. Latency histograms (backend requests by operation, FUSE requests by
/// operation) are recorded as they happen through swift-metrics timers into `recorded`, bootstrapped before
/// the daemon builds anything. Everything else is state the daemon already counts (the figures `status`
/// shows), written into a fresh registry at each scrape, so a counter is exactly the daemon's own count and
/// no second bookkeeping can drift from it.
final class MetricsExporter: Sendable {
    /// What swift-metrics timers record into.
    let recorded: PrometheusCollectorRegistry
    private let parts = Locked<MountDaemon.Parts?>(nil)

    /// Latency buckets from 100 µs (a warm FUSE read) to 60 s (a large part over a slow link).
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    /// Help text of the histograms that swift-metrics timers record into.
    static let timerHelp: [String: String] = [
        "lakecache_backend_first_byte_seconds": "Time from sending a request to the object store to the first byte of its answer, per attempt, by operation.",
        "lakecache_backend_request_duration_seconds": "Time of one whole exchange with the object store, per attempt, by operation.",
        "lakecache_fuse_operation_duration_seconds": "Time from a kernel request's arrival to its reply, by FUSE operation.",
    ]

    /// Bootstraps swift-metrics with a Prometheus factory; call once, before any client or bridge exists.
    init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        MetricsSystem.bootstrap(HelpfulFactory(base: factory, registry: registry, help: Self.timerHelp))
        recorded = registry
    }

    /// Gives the exporter the mount's parts once they exist; scrapes before that show only the latencies.
    func attach(_ p: MountDaemon.Parts) { parts.withLock { $0 = p } }

    /// The exposition text.
    func render() -> [UInt8] {
        let snapshot = PrometheusCollectorRegistry()
        if let p = parts.withLock({ $0 }) { Self.fill(snapshot, p) }
        var out = snapshot.emitToBuffer()
        recorded.emit(into: &out)
        return out
    }

    // swift-prometheus counters only count up: a fresh registry per scrape starts them at zero, and one
    // increment sets them to the daemon's own total.
    private static func counter(_ r: PrometheusCollectorRegistry, _ name: String, _ labels: [(String, String)] = [], _ help: String, _ value: Int64) {
        r.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels).increment(by: max(0, value))
    }

    private static func gauge(_ r: PrometheusCollectorRegistry, _ name: String, _ labels: [(String, String)] = [], _ help: String, _ value: Double) {
        r.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels).set(value)
    }

    static func fill(_ r: PrometheusCollectorRegistry, _ p: MountDaemon.Parts) {
        gauge(r, "lakecache_build_info", [("version", LakeCacheVersion.current)], "The lakecache build: always 1, the version is the label.", 1)
        gauge(r, "lakecache_uptime_seconds", [], "Seconds since the mount started.", monotonicSeconds() - p.started)
        if let resident = ProcessMemory.resident() {
            gauge(r, "lakecache_resident_memory_bytes", [], "The daemon's resident memory (VmRSS): the memory tier and everything else.", Double(resident.bytes))
        }
        gauge(r, "lakecache_heap_bytes", [], "Bytes the daemon's allocator has handed out and not had back (the memory tier is not in it).", Double(ProcessMemory.heapInUse()))

        let memory = p.cache.memoryUsage
        let disk = p.disk.usage
        let tier = "Cached bytes by tier."
        gauge(r, "lakecache_cache_bytes", [("tier", "memory")], tier, Double(memory.bytes))
        gauge(r, "lakecache_cache_bytes", [("tier", "disk")], tier, Double(disk.bytes))
        let capacity = "Capacity of the tier in bytes."
        gauge(r, "lakecache_cache_capacity_bytes", [("tier", "memory")], capacity, Double(memory.capacity))
        gauge(r, "lakecache_cache_capacity_bytes", [("tier", "disk")], capacity, Double(p.plan.cacheSize))
        let hits = "Block reads the tier answered."
        counter(r, "lakecache_cache_hits_total", [("tier", "memory")], hits, Int64(p.cache.hits.load(ordering: .relaxed)))
        counter(r, "lakecache_cache_hits_total", [("tier", "disk")], hits, Int64(p.disk.hits.load(ordering: .relaxed)))
        let misses = "Block reads the tier could not answer."
        counter(r, "lakecache_cache_misses_total", [("tier", "memory")], misses, Int64(p.cache.misses.load(ordering: .relaxed)))
        counter(r, "lakecache_cache_misses_total", [("tier", "disk")], misses, Int64(p.disk.misses.load(ordering: .relaxed)))
        counter(r, "lakecache_cache_range_reads_total", [("tier", "disk")], "Reads served from the sub-blocks of a disk-tier block they touch, without loading the block.", Int64(p.disk.rangeReads.load(ordering: .relaxed)))
        let evictions = "Blocks evicted from the tier to make room."
        counter(r, "lakecache_cache_evictions_total", [("tier", "memory")], evictions, Int64(p.cache.evictions))
        counter(r, "lakecache_cache_evictions_total", [("tier", "disk")], evictions, Int64(p.disk.evictions.load(ordering: .relaxed)))
        counter(r, "lakecache_cache_checksum_failures_total", [("tier", "disk")], "Blocks dropped because their checksum did not match (then fetched again).", Int64(p.disk.corrupt.load(ordering: .relaxed)))
        gauge(r, "lakecache_cache_pinned_bytes", [], "Bytes of the disk tier held by pins and resident checkpoints.", Double(p.disk.pinnedBytes))
        gauge(r, "lakecache_cache_pin_budget_bytes", [], "Bytes pins may hold.", Double(p.disk.pinBudget))

        // Store-level traffic: a client serves every link on its store, so these are by operation only.
        for (op, t) in backendTraffic(p) {
            let l = [("operation", op.name)]
            counter(r, "lakecache_backend_attempts_total", l, "HTTP requests sent to object stores, by operation (retries included).", Int64(t.requests))
            counter(r, "lakecache_backend_retries_total", l, "Requests sent again after a retryable failure, by operation.", Int64(t.retries))
            counter(r, "lakecache_backend_received_bytes_total", l, "Bytes received from object stores (bodies and XML), by operation.", t.bytesIn)
            counter(r, "lakecache_backend_sent_bytes_total", l, "Request body bytes sent to object stores, by operation.", t.bytesOut)
        }

        let usage = p.filesystem.usage()
        for link in p.filesystem.links.links {
            let name = "/" + link.path
            let u = usage[link.path] ?? Filesystem.LinkUsage()
            if let requests = p.builder.requests(link.path) {
                let errors = requests.errorsByOperation
                for (op, n) in requests.byOperation.sorted(by: { $0.key < $1.key }) {
                    let l = [("link", name), ("operation", op)]
                    counter(r, "lakecache_backend_requests_total", l, "Calls a link made to its object store, by operation (one per call, however many attempts it took).", Int64(n))
                    counter(r, "lakecache_backend_errors_total", l, "Calls of a link that failed after their retries, by operation (not-found answers to lookups excluded).", Int64(errors[op] ?? 0))
                }
            }
            for (tier, bytes) in [("memory", u.memoryBytes), ("disk", u.diskBytes)] {
                gauge(r, "lakecache_link_cache_bytes", [("link", name), ("tier", tier)], "Cached bytes of the link's objects, by tier.", Double(bytes))
            }
            counter(r, "lakecache_link_reads_total", [("link", name)], "Reads of the link's files.", Int64(u.reads))
            counter(r, "lakecache_link_read_hits_total", [("link", name)], "Reads of the link's files answered from a cache tier.", Int64(u.readHits))
            gauge(r, "lakecache_uploads_pending", [("link", name)], "Files written and closed whose upload is not durable yet.", Double(u.uploads.pendingFiles))
            gauge(r, "lakecache_uploads_pending_bytes", [("link", name)], "Bytes of the pending files.", Double(u.uploads.pendingBytes))
            gauge(r, "lakecache_uploads_failed", [("link", name)], "Uploads that failed for good (kept journaled; lakecache flush retries them).", Double(u.uploads.failures.count))
        }
        if let w = p.writeBack?.stats() {
            gauge(r, "lakecache_uploads_oldest_age_seconds", [], "Age of the oldest pending upload (0 with none).", w.oldestPendingSeconds ?? 0)
            counter(r, "lakecache_uploads_completed_total", [], "Uploads made durable since the mount started.", Int64(w.completedUploads))
        }

        var jobs: [String: Int] = [:]
        var done: Int64 = 0, total: Int64 = 0, fetched: Int64 = 0, failures = 0
        for job in p.jobs.all {
            let s = job.snapshot
            jobs[s.state.rawValue, default: 0] += 1
            done += s.bytesDone
            total += s.bytesTotal
            fetched += s.bytesFetched
            failures += s.failures.count
        }
        for state in ["running", "done", "failed", "cancelled"] {
            gauge(r, "lakecache_warmup_jobs", [("state", state)], "Warmup jobs the daemon tracks (running ones and the last 200 finished), by state.", Double(jobs[state] ?? 0))
        }
        for (kind, bytes) in [("done", done), ("total", total), ("fetched", fetched)] {
            gauge(r, "lakecache_warmup_bytes", [("kind", kind)], "Bytes of the tracked warmup jobs: cached so far (done), asked for (total), fetched from the bucket (fetched).", Double(bytes))
        }
        gauge(r, "lakecache_warmup_failed_files", [], "Files the tracked warmup jobs could not cache.", Double(failures))

        if let e = p.events {
            for (outcome, n) in e.service.counters.all.sorted(by: { $0.key < $1.key }) {
                counter(r, "lakecache_events_total", [("outcome", outcome)], "Object-store events received, by what became of them.", Int64(n))
            }
            gauge(r, "lakecache_events_pending", [], "Events journaled and not applied yet.", Double(e.service.journal.pending.count))
        }
    }
}

/// The traffic of every client of the mount, summed by operation; operations never sent are left out.
func backendTraffic(_ p: MountDaemon.Parts) -> [(BackendOperation, OperationTraffic)] {
    var sum = [OperationTraffic](repeating: OperationTraffic(), count: BackendOperation.allCases.count)
    for client in p.builder.clients.values {
        for (i, t) in client.metrics.byOperation.enumerated() { sum[i].add(t) }
    }
    return BackendOperation.allCases.compactMap { op in sum[op.rawValue].requests > 0 ? (op, sum[op.rawValue]) : nil }
}

/// swift-prometheus's factory, except that timers become histograms with help text: swift-prometheus's own
/// factory registers them without (`promtool check metrics` refuses a family without HELP), and its registry
/// will not take two registrations of one name with different help.
struct HelpfulFactory: MetricsFactory {
    let base: PrometheusMetricsFactory
    let registry: PrometheusCollectorRegistry
    let help: [String: String]

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let text = help[label] else { return base.makeTimer(label: label, dimensions: dimensions) }
        let descriptor = MetricNameDescriptor(metricName: label, unitName: "", helpText: text)
        return registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: MetricsExporter.latencyBuckets)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { base.makeCounter(label: label, dimensions: dimensions) }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { base.makeMeter(label: label, dimensions: dimensions) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }
    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

/// Answers `GET /metrics` (and hands every other request to the events endpoint when they share a server).
struct MetricsResponder: HTTPResponder {
    let exporter: MetricsExporter
    /// The events endpoint on the same address, if any.
    let events: (any HTTPResponder)?

    var maxBody: Int { events?.maxBody ?? 0 }

    func isScrape(_ r: HTTPServerRequest) -> Bool { r.path == "/metrics" && (r.method == "GET" || r.method == "HEAD") }

    func precheck(_ head: HTTPServerRequest) -> HTTPReply? {
        if isScrape(head) { return nil }
        if let events { return events.precheck(head) }
        return nil
    }

    func tooLarge(_ detail: String) -> HTTPReply {
        events?.tooLarge(detail) ?? HTTPReply(status: 413, body: Array("\(detail)\n".utf8), contentType: "text/plain")
    }

    func respond(_ r: HTTPServerRequest) async -> HTTPReply {
        if isScrape(r) {
            return HTTPReply(status: 200, body: exporter.render(), contentType: "text/plain; version=0.0.4; charset=utf-8", keepAlive: true)
        }
        if let events { return await events.respond(r) }
        if r.path == "/metrics" {
            return HTTPReply(status: 405, body: Array("only GET is served at /metrics\n".utf8), contentType: "text/plain", headers: [("Allow", "GET, HEAD")])
        }
        return HTTPReply(status: 404, body: Array("lakecache serves Prometheus metrics at /metrics\n".utf8), contentType: "text/plain")
    }
}
