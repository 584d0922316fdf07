import Control
import Events
import Filesystem
import HTTPServing
import ObjectStore
import Platform
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// `status`: cache tiers, backend, uploads and namespace, for the mount and per link.
enum StatusHandler {
    static func status(_ p: MountDaemon.Parts) -> JSONValue {
        let (n, n64) = (ControlHandlers.n, ControlHandlers.n64)
        let cache = p.cache
        let memory = cache.memoryUsage
        let diskUsage = p.disk.usage
        let sizes = p.filesystem.sizes
        let links = p.filesystem.links.links
        let usage = p.filesystem.usage()
        let traffic = backendTraffic(p)
        var total = OperationTraffic()
        for (_, t) in traffic { total.add(t) }
        var skipped = 0
        var shadowed = 0
        for l in links {
            skipped += l.counters.skippedKeys.load(ordering: .relaxed)
            shadowed += l.counters.shadowedFiles.load(ordering: .relaxed)
        }
        let resident = ProcessMemory.resident()
        var fields: [(String, JSONValue)] = [
            ("mountpoint", .string(p.plan.mountpoint)),
            ("pid", n(Int(getpid()))),
            // Where `lakecache` commands reach this daemon; a client of its own (a bench, a probe) asks here.
            ("control_socket", .string(ControlPaths.socket(for: p.plan.mountpoint))),
            ("uptime_seconds", .number(((monotonicSeconds() - p.started) * 10).rounded() / 10)),
        ]
        if let file = p.plan.configFile { fields.append(("config", .string(file))) }
        if links.count == 1 && links[0].path.isEmpty {
            // A one-URL mount: the link's identity at the top, as before links existed.
            let only = links[0]
            fields += [
                ("bucket", .string(only.bucket.bucket)), ("prefix", .string(only.bucket.prefix)),
                ("endpoint", .string(p.builder.plan("")?.s3.endpoint.description ?? "")),
                ("read_only", .bool(only.policy.readOnly)), ("write_mode", .string(only.policy.syncClose ? "sync" : "async")),
                ("credentials", credentials(p.builder.plan("")?.s3.credentials)),
            ]
        }
        fields += [
            ("cache", .object([
                ("block_size", n(cache.blockSize)),
                ("memory", .object([
                    ("bytes", n64(memory.bytes)), ("capacity", n64(memory.capacity)),
                    ("hits", n(cache.hits.load(ordering: .relaxed))), ("misses", n(cache.misses.load(ordering: .relaxed))),
                    ("evictions", n(cache.evictions)),
                    ("joined_fills", n(cache.joinedFills.load(ordering: .relaxed))),
                    ("prefetched_blocks", n(cache.prefetches.load(ordering: .relaxed))),
                    ("prefaulted_bytes", n(cache.prefaultedBytes)),
                ])),
                ("disk", .object([
                    ("directory", .string(p.plan.cacheDir)),
                    ("bytes", n64(diskUsage.bytes)), ("capacity", n64(p.plan.cacheSize)), ("blocks", n(diskUsage.blocks)),
                    ("hits", n(p.disk.hits.load(ordering: .relaxed))), ("misses", n(p.disk.misses.load(ordering: .relaxed))),
                    ("range_reads", n(p.disk.rangeReads.load(ordering: .relaxed))),
                    ("corrupt_blocks", n(p.disk.corrupt.load(ordering: .relaxed))),
                    ("write_skips", n(p.disk.writeSkips.load(ordering: .relaxed))),
                    ("evictions", n(p.disk.evictions.load(ordering: .relaxed))),
                    ("pinned_bytes", n64(p.disk.pinnedBytes)), ("pinned_files", n(p.disk.pinnedCount)),
                    ("pin_budget", n64(p.disk.pinBudget)),
                ])),
                ("network_fills", n(cache.networkFills.load(ordering: .relaxed))),
                ("disk_fills", n(cache.diskFills.load(ordering: .relaxed))),
            ])),
            ("backend", .object([
                ("requests", .object(traffic.sorted { $0.0.name < $1.0.name }.map { ($0.0.name, n($0.1.requests)) })),
                ("bytes_in", n64(total.bytesIn)), ("bytes_out", n64(total.bytesOut)), ("errors", n(total.errors)), ("retries", n(total.retries)),
                // The same by operation, as the metrics endpoint shows them.
                ("operations", .object(traffic.sorted { $0.0.name < $1.0.name }.map { op, t in
                    (op.name, .object([
                        ("requests", n(t.requests)), ("retries", n(t.retries)), ("errors", n(t.errors)),
                        ("bytes_in", n64(t.bytesIn)), ("bytes_out", n64(t.bytesOut)),
                    ]))
                })),
            ])),
            ("uploads", uploads(p.writeBack?.stats() ?? UploadStats())),
            ("close_durability", .string(p.plan.closeDurability.rawValue)),
            ("process", .object([
                ("rss_bytes", n64(resident?.bytes ?? 0)), ("peak_rss_bytes", n64(resident?.peak ?? 0)),
                ("heap_bytes", n64(ProcessMemory.heapInUse())),
            ])),
            ("namespace", .object([
                ("inodes", n(sizes.nodes)), ("cached_listing_entries", n(sizes.listingEntries)), ("open_files", n(sizes.openFiles)),
                ("skipped_keys", n(skipped)), ("shadowed_files", n(shadowed)),
                ("background_heads", n(p.filesystem.backgroundHeads)),
            ])),
            ("links", .array(links.map { link in
                let u = usage[link.path] ?? Filesystem.LinkUsage()
                let r = p.builder.requests(link.path)
                return .object([
                    ("path", .string("/" + link.path)), ("url", .string("\(link.bucket)")),
                    ("endpoint", .string(p.builder.plan(link.path)?.s3.endpoint.description ?? "")),
                    ("credentials", credentials(p.builder.plan(link.path)?.s3.credentials)),
                    ("cache", .object([
                        ("memory_bytes", n64(u.memoryBytes)), ("disk_bytes", n64(u.diskBytes)),
                        ("hits", n(u.readHits)), ("misses", n(u.reads - u.readHits)),
                    ])),
                    ("backend", .object([
                        ("requests", .object((r?.byOperation ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) })),
                        ("errors", n(r?.errors ?? 0)),
                        ("errors_by_operation", .object((r?.errorsByOperation ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) })),
                    ])),
                    ("uploads", .object([
                        ("pending", n(u.uploads.pendingFiles)), ("pending_bytes", n64(u.uploads.pendingBytes)),
                        ("failed", n(u.uploads.failures.count)),
                    ])),
                    ("skipped_keys", n(link.counters.skippedKeys.load(ordering: .relaxed))),
                    ("excluded_keys", n(link.counters.excludedKeys.load(ordering: .relaxed))),
                    ("shadowed_files", n(link.counters.shadowedFiles.load(ordering: .relaxed))),
                    ("listings_read_ahead", n(link.counters.listingReadAheads.load(ordering: .relaxed))),
                ])
            })),
        ]
        if let m = p.metrics {
            fields.append(("metrics", .object([
                ("address", .string(ListenAddress(host: m.address.host, port: m.server.port).description)),
                ("shared_with_events", .bool(m.shared)),
            ])))
        }
        if let e = p.events {
            let counts = e.service.counters.all
            fields.append(("events", .object([
                ("address", .string(EventAddress(host: e.address.host, port: e.server.port).description)),
                ("pending", n(e.service.journal.pending.count)),
                ("rejected", n(counts.filter { $0.key.hasPrefix("rejected_") }.reduce(0) { $0 + $1.value })),
                ("counters", .object(counts.sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) })),
                ("last_rejection", e.service.counters.lastRejection.map(JSONValue.string) ?? .null),
            ])))
        }
        return .object(fields)
    }

    /// Where a link's credentials come from and, for temporary ones, when they expire and how refreshes went.
    static func credentials(_ provider: CredentialProvider?) -> JSONValue {
        guard let provider else { return .object([("source", .string("none (unsigned requests)"))]) }
        let (n, n64) = (ControlHandlers.n, ControlHandlers.n64)
        let r = provider.refreshStats
        var fields: [(String, JSONValue)] = [("source", .string(provider.source)), ("refreshes", n(r.refreshes))]
        if let e = r.expiration { fields.append(("expires_in_seconds", n64(e - wallClock().seconds))) }
        if let error = r.lastError { fields.append(("last_refresh_error", .string(error))) }
        return .object(fields)
    }

    static func uploads(_ u: UploadStats) -> JSONValue {
        .object([
            ("pending", .number(Double(u.pendingFiles))), ("pending_bytes", .number(Double(u.pendingBytes))),
            ("uploaded_bytes", .number(Double(u.uploadedBytes))), ("open_for_writing", .number(Double(u.openForWriting))),
            ("failed", .number(Double(u.failures.count))),
            ("oldest_age_seconds", .number(((u.oldestPendingSeconds ?? 0) * 10).rounded() / 10)),
            ("completed", .number(Double(u.completedUploads))),
            ("resident_files", .number(Double(u.residentFiles))), ("resident_bytes", .number(Double(u.residentBytes))),
            ("failures", .array(u.failures.map { f in
                .object([("key", .string(f.key)), ("error", .string(f.failure.message)), ("permanent", .bool(f.failure.permanent))])
            })),
            ("lost_in_power_cut", .array(u.lostInPowerCut.map { .object([("bucket", .string($0.bucket)), ("key", .string($0.key))]) })),
        ])
    }
}
