import Control
import Filesystem
import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The `status --json` document of a running mount.
enum StatusReport {
    static func build(plan: MountPlan, client: S3Client, cache: BlockCache, disk: DiskTier?, filesystem: Filesystem, writeBack: WriteBack?, started: Double) -> JSONValue {
        func n(_ v: Int) -> JSONValue { .number(Double(v)) }
        func n64(_ v: Int64) -> JSONValue { .number(Double(v)) }
        let memory = cache.memoryUsage
        let diskUsage = disk?.usage ?? (0, 0)
        let m = client.metrics
        let counters = filesystem.counters
        let sizes = filesystem.sizes
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let uptime = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - started
        return .object([
            ("mountpoint", .string(plan.mountpoint)),
            ("bucket", .string(plan.bucket.bucket)),
            ("prefix", .string(plan.bucket.prefix)),
            ("endpoint", .string(plan.s3.endpoint.description)),
            ("pid", n(Int(getpid()))),
            ("uptime_seconds", .number((uptime * 10).rounded() / 10)),
            ("read_only", .bool(plan.readOnly)),
            ("write_mode", .string(plan.writeMode)),
            ("cache", .object([
                ("block_size", n(cache.blockSize)),
                ("memory", .object([
                    ("bytes", n64(memory.bytes)), ("capacity", n64(memory.capacity)),
                    ("hits", n(cache.hits.load(ordering: .relaxed))), ("misses", n(cache.misses.load(ordering: .relaxed))),
                    ("joined_fills", n(cache.joinedFills.load(ordering: .relaxed))),
                    ("prefetched_blocks", n(cache.prefetches.load(ordering: .relaxed))),
                ])),
                ("disk", .object([
                    ("directory", .string(plan.cacheDir)),
                    ("bytes", n64(diskUsage.0)), ("capacity", n64(plan.cacheSize)), ("blocks", n(diskUsage.1)),
                    ("hits", n(disk?.hits.load(ordering: .relaxed) ?? 0)), ("misses", n(disk?.misses.load(ordering: .relaxed) ?? 0)),
                    ("corrupt_blocks", n(disk?.corrupt.load(ordering: .relaxed) ?? 0)),
                    ("write_skips", n(disk?.writeSkips.load(ordering: .relaxed) ?? 0)),
                    ("evictions", n(disk?.evictions.load(ordering: .relaxed) ?? 0)),
                ])),
                ("network_fills", n(cache.networkFills.load(ordering: .relaxed))),
                ("disk_fills", n(cache.diskFills.load(ordering: .relaxed))),
            ])),
            ("backend", .object([
                ("requests", .object(m.requests.sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) })),
                ("bytes_in", n64(m.bytesIn.load(ordering: .relaxed))),
                ("bytes_out", n64(m.bytesOut.load(ordering: .relaxed))),
                ("errors", n(m.errors.load(ordering: .relaxed))),
                ("retries", n(m.retries.load(ordering: .relaxed))),
            ])),
            ("uploads", uploads(writeBack?.stats() ?? UploadStats())),
            ("namespace", .object([
                ("inodes", n(sizes.nodes)), ("cached_listing_entries", n(sizes.listingEntries)), ("open_files", n(sizes.openFiles)),
                ("skipped_keys", n(counters.skippedKeys)), ("shadowed_files", n(counters.shadowedFiles)),
            ])),
        ])
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
        ])
    }

    /// Upload progress below one key or key prefix, for `flush` and `unmount`; with `retry` (their first
    /// poll), failed uploads there are retried at once.
    static func pending(_ writeBack: WriteBack?, key: String, retry: Bool) -> JSONValue {
        guard let writeBack else { return uploads(UploadStats()) }
        let base = key.hasSuffix("/") ? String(key.dropLast()) : key
        let matches: (String) -> Bool = { k in base.isEmpty || k == base || k.hasPrefix(base + "/") }
        if retry { writeBack.retryNow(matching: { matches($0.key) }) }
        return uploads(writeBack.stats(matching: { matches($0.key) }))
    }
}
