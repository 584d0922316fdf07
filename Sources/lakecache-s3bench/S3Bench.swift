import ArgumentParser
import Platform
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Drives an S3 endpoint with lakecache's own client at a fixed concurrency and prints one JSON result line.
///
/// It measures what the backend and client can do without FUSE or caches in the way: the "raw S3" column of
/// the benchmarks, and the bench store's own speed floor.
@main
struct S3Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lakecache-s3bench",
        abstract: "Raw S3 throughput with lakecache's client.",
        subcommands: [RangedRead.self, SmallGets.self, Put.self, MD5Speed.self])
}

struct Common: ParsableArguments {
    @Option(help: "Endpoint URL (else the usual AWS_* variables).") var endpoint: String?
    @Option(help: "Bucket.") var bucket: String
    @Option(help: "Requests in flight.") var concurrency = 16

    func client() throws -> S3Client {
        var config = try S3Configuration.resolve(endpoint: endpoint, region: nil, profile: nil, anonymous: false, environment: processEnvironment())
        config.transport.maxConcurrentTransfers = max(concurrency, 1)
        return S3Client(configuration: config)
    }
}

/// One GET into `buffer`, awaited.
func fetch(_ s3: S3Client, _ request: GetObjectRequest, _ buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
    try await s3.getObject(request, into: buffer).bytesWritten
}

/// Runs `count` GETs with `workers` in flight, each worker reusing one buffer; returns the bytes read.
func fetchAll(
    _ s3: S3Client, workers: Int, count: Int, bufferBytes: Int, request: @escaping @Sendable (Int) -> GetObjectRequest
) async throws -> Int {
    let counter = Counter()
    return try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<workers {
            group.addTask {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 4096)
                defer { buffer.deallocate() }
                var bytes = 0
                while true {
                    let i = counter.take()
                    guard i < count else { return bytes }
                    bytes += try await fetch(s3, request(i), buffer)
                }
            }
        }
        return try await group.reduce(0, +)
    }
}

/// Hands out work items to concurrent workers.
final class Counter: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

struct RangedRead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ranged-read", abstract: "Read whole objects with concurrent ranged GETs.")
    @OptionGroup var common: Common
    @Option(help: "Object keys (repeatable); each is read once, in full.") var key: [String]
    @Option(help: "Bytes per ranged GET.") var partSize = 8 << 20

    func run() async throws {
        let s3 = try common.client()
        var work: [(String, ByteRange, String)] = []
        for k in key {
            let info = try await s3.headObject(bucket: common.bucket, key: k)
            var off: Int64 = 0
            while off < info.size {
                let len = min(Int64(partSize), info.size - off)
                work.append((k, ByteRange(offset: off, length: len), info.etag))
                off += len
            }
        }
        let (bucket, jobs) = (common.bucket, work)
        let start = monotonicSeconds()
        let total = try await fetchAll(s3, workers: common.concurrency, count: jobs.count, bufferBytes: partSize) { i in
            GetObjectRequest(bucket: bucket, key: jobs[i].0, range: jobs[i].1, ifMatch: jobs[i].2)
        }
        let seconds = monotonicSeconds() - start
        print("{\"workload\":\"ranged-read\",\"bytes\":\(total),\"seconds\":\(seconds),\"mb_per_s\":\(Double(total) / seconds / 1e6),\"requests\":\(work.count),\"concurrency\":\(common.concurrency)}")
        s3.shutdown()
    }
}

struct SmallGets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "small-gets", abstract: "GET every object under a prefix, whole.")
    @OptionGroup var common: Common
    @Option(help: "Key prefix to list and read.") var prefix = ""
    @Option(help: "Read the list this many times.") var rounds = 1

    func run() async throws {
        let s3 = try common.client()
        // An epoch is list, then read: the listing is timed too, as it is on a mount.
        let start = monotonicSeconds()
        var keys: [(String, Int64)] = []
        var token: String?
        repeat {
            let page = try await s3.listObjects(ListObjectsRequest(bucket: common.bucket, prefix: prefix, continuationToken: token))
            keys += page.objects.map { ($0.key, $0.size) }
            token = page.nextContinuationToken
        } while token != nil
        let maxSize = Int(keys.map(\.1).max() ?? 0)
        let n = keys.count * rounds
        let (bucket, list) = (common.bucket, keys)
        let total = try await fetchAll(s3, workers: common.concurrency, count: n, bufferBytes: max(maxSize, 1)) { i in
            GetObjectRequest(bucket: bucket, key: list[i % list.count].0)
        }
        let seconds = monotonicSeconds() - start
        print("{\"workload\":\"small-gets\",\"objects\":\(n),\"bytes\":\(total),\"seconds\":\(seconds),\"gets_per_s\":\(Double(n) / seconds),\"concurrency\":\(common.concurrency)}")
        s3.shutdown()
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Upload a local file with concurrent multipart parts.")
    @OptionGroup var common: Common
    @Option(help: "Destination key.") var key: String
    @Option(help: "Local file to upload.") var file: String
    @Option(help: "Part size in bytes.") var partSize = 16 << 20

    func run() async throws {
        let s3 = try common.client()
        let fd = open(file, O_RDONLY)
        guard fd >= 0 else { throw ValidationError("cannot open \(file)") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = Int64(st.st_size)
        let start = monotonicSeconds()
        if size <= Int64(partSize) {
            _ = try await s3.putObject(bucket: common.bucket, key: key, body: .file(descriptor: fd, offset: 0, length: size), options: PutOptions())
        } else {
            let id = try await s3.createMultipartUpload(bucket: common.bucket, key: key, options: PutOptions())
            let count = Int((size + Int64(partSize) - 1) / Int64(partSize))
            let counter = Counter()
            let (bucket, key, partSize) = (common.bucket, key, partSize)
            let parts = try await withThrowingTaskGroup(of: [CompletedPart].self) { group in
                for _ in 0..<common.concurrency {
                    group.addTask {
                        var done: [CompletedPart] = []
                        while true {
                            let i = counter.take()
                            guard i < count else { return done }
                            let off = Int64(i) * Int64(partSize)
                            let etag = try await s3.uploadPart(
                                bucket: bucket, key: key, uploadID: id, partNumber: i + 1,
                                body: .file(descriptor: fd, offset: off, length: min(Int64(partSize), size - off)))
                            done.append(CompletedPart(partNumber: i + 1, etag: etag))
                        }
                    }
                }
                return try await group.reduce([], +)
            }
            _ = try await s3.completeMultipartUpload(bucket: common.bucket, key: key, uploadID: id, parts: parts)
        }
        let seconds = monotonicSeconds() - start
        print("{\"workload\":\"put\",\"bytes\":\(size),\"seconds\":\(seconds),\"mb_per_s\":\(Double(size) / seconds / 1e6),\"concurrency\":\(common.concurrency)}")
        s3.shutdown()
    }
}
