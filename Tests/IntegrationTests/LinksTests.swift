import Foundation
import Testing

import Platform
@testable import ObjectStore

/// One namespace joining a bucket on moto and a bucket on the bench store, each with its own policy.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct LinksTests {
    let moto: String
    let bench: String

    init() throws {
        try Servers.requireServers()
        moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    /// datasets/images on the bench store (read-only, *.tmp excluded, listing metadata), checkpoints on moto
    /// (sync close), models on the bench store (another bucket, async).
    func config(images: String, ckpt: String, models: String, extra: String = "") -> String {
        """
        metadata-ttl: 300
        links:
          - path: datasets/images
            url: s3://\(images)/v1
            endpoint: \(bench)
            read-only: true
            metadata: listing
            exclude: ["*.tmp"]
          - path: checkpoints
            url: s3://\(ckpt)
            endpoint: \(moto)
            write-mode: sync
          - path: models
            url: s3://\(models)
            endpoint: \(bench)
        \(extra)
        """
    }

    func sh(_ script: String, _ args: [String] = []) -> (status: Int32, stdout: String, stderr: String) {
        spawn("/bin/sh", ["-c", script, "sh"] + args)
    }

    @Test func oneNamespaceOfTwoStoresWithTheirOwnPolicies() async throws {
        let images = try await freshBucket(Servers.bench, "lnki")
        let models = try await freshBucket(Servers.bench, "lnkm")
        let ckpt = try await freshBucket(Servers.moto, "lnkc")
        for i in 0..<20 { _ = try await Servers.bench.putObject(bucket: images, key: "v1/cat\(i).jpg", body: .bytes(patternBytes(5000 + i, seed: UInt64(i))), options: PutOptions()) }
        _ = try await Servers.bench.putObject(bucket: images, key: "v1/partial.tmp", body: .bytes([1, 2, 3]), options: PutOptions())
        _ = try await Servers.bench.putObject(bucket: images, key: "outside/x.jpg", body: .bytes([9]), options: PutOptions())
        let m = TestMount(config: config(images: images, ckpt: ckpt, models: models))
        try await withMount(m) { m throws in
            // The root and `datasets` are synthetic: the links and the directories above them.
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted() == ["checkpoints", "datasets", "models"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("datasets")) == ["images"])
            #expect(mkdir(m.path("datasets/new"), 0o755) == -1 && errno == EROFS, "writes above links are EROFS")

            // Reads through the bench store; the excluded key is not listed, not found, never fetched.
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("datasets/images")).sorted()
            #expect(names.count == 20 && !names.contains("partial.tmp"))
            #expect(try readFile(m.path("datasets/images/cat3.jpg")) == patternBytes(5003, seed: 3))
            var st = stat()
            #expect(stat(m.path("datasets/images/partial.tmp"), &st) == -1 && errno == ENOENT)
            let gets = (try await BenchControl.requests(bucket: images))["GetObject"] ?? 0
            #expect(gets == 1, "only cat3.jpg was fetched: \(gets) GETs")
            // Read-only link.
            #expect(open(m.path("datasets/images/new.jpg"), O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS)

            // A sync-mode link: close returns once moto has the object.
            try writeFile(m.path("checkpoints/step1.bin"), patternBytes(200_000, seed: 5))
            let head = (try await Servers.moto.headObject(bucket: ckpt, key: "step1.bin"))
            #expect(head.size == 200_000, "close() of a sync link returned before the bucket had the object")

            // Rename across links is EXDEV; mv falls back to copy and delete.
            #expect(rename(m.path("checkpoints/step1.bin"), m.path("models/step1.bin")) == -1 && errno == EXDEV)
            let mv = sh("mv \"$1\" \"$2\"", [m.path("checkpoints/step1.bin"), m.path("models/step1.bin")])
            #expect(mv.status == 0, "mv across links: \(mv.stderr)")
            #expect(try readFile(m.path("models/step1.bin")) == patternBytes(200_000, seed: 5))
            #expect(stat(m.path("checkpoints/step1.bin"), &st) == -1 && errno == ENOENT)
            #expect(flush(m.path("models")).status == 0)
            #expect((try await Servers.bench.headObject(bucket: models, key: "step1.bin")).size == 200_000)

            // Outside changes, then sync: right counts, new names at once, deleted ones gone before any TTL.
            let before = try FileManager.default.contentsOfDirectory(atPath: m.path("datasets/images")).sorted()
            #expect(before.count == 20)
            _ = try await Servers.bench.putObject(bucket: images, key: "v1/cat100.jpg", body: .bytes([1]), options: PutOptions())
            _ = try await Servers.bench.putObject(bucket: images, key: "v1/cat0.jpg", body: .bytes([2, 2]), options: PutOptions())
            try await Servers.bench.deleteObject(bucket: images, key: "v1/cat1.jpg")
            let sync = TestMount.run(["sync", "--json", m.path("datasets/images")])
            #expect(sync.status == 0, "sync: \(sync.output)")
            let report = try JSONSerialization.jsonObject(with: Data(sync.output.utf8)) as? [String: Any]
            #expect(report?["new"] as? Int == 1 && report?["changed"] as? Int == 1 && report?["deleted"] as? Int == 1 && report?["unchanged"] as? Int == 18, "counts: \(sync.output)")
            let after = try FileManager.default.contentsOfDirectory(atPath: m.path("datasets/images")).sorted()
            #expect(after.contains("cat100.jpg") && !after.contains("cat1.jpg"), "\(after)")
            #expect(try readFile(m.path("datasets/images/cat0.jpg")) == [2, 2], "the changed object reads at its new version")
            #expect(stat(m.path("datasets/images/cat1.jpg"), &st) == -1 && errno == ENOENT)

            // links and status show every link.
            let links = TestMount.run(["links", "--json", m.mountpoint])
            #expect(links.status == 0 && links.output.contains("/checkpoints") && links.output.contains("\"sync\""), "\(links.output)")
            let status = try m.status()
            let perLink = try #require(status["links"] as? [[String: Any]])
            #expect(perLink.count == 3)
            let imagesStatus = try #require(perLink.first { $0["path"] as? String == "/datasets/images" })
            #expect(((imagesStatus["backend"] as? [String: Any])?["requests"] as? [String: Int])?["GetObject"] ?? 0 >= 2)
        }
    }

    @Test func reloadAddsAndRemovesLinksWhileFilesAreOpen() async throws {
        let images = try await freshBucket(Servers.bench, "rldi")
        let models = try await freshBucket(Servers.bench, "rldm")
        let ckpt = try await freshBucket(Servers.moto, "rldc")
        let extra = try await freshBucket(Servers.bench, "rlde")
        _ = try await Servers.bench.putObject(bucket: extra, key: "hello.txt", body: .bytes(Array("hello".utf8)), options: PutOptions())
        _ = try await Servers.bench.putObject(bucket: models, key: "m.bin", body: .bytes(patternBytes(300_000, seed: 8)), options: PutOptions())
        let m = TestMount(config: config(images: images, ckpt: ckpt, models: models))
        try await withMount(m) { m throws in
            // A file open on `models`, which the reload removes.
            let fd = open(m.path("models/m.bin"), O_RDONLY)
            #expect(fd >= 0)
            defer { close(fd) }
            let next = config(images: images, ckpt: ckpt, models: models).replacingOccurrences(of: """
                  - path: models
                    url: s3://\(models)
                    endpoint: \(bench)
                """, with: """
                  - path: more/extra
                    url: s3://\(extra)
                    endpoint: \(bench)
                    read-only: true
                """)
            try m.rewrite(next)
            let r = TestMount.run(["reload", m.mountpoint])
            #expect(r.status == 0, "reload: \(r.output)")
            #expect(r.output.contains("/more/extra") && r.output.contains("/models"), "\(r.output)")
            #expect(try String(contentsOfFile: m.path("more/extra/hello.txt"), encoding: .utf8) == "hello", "an added link appears at once")
            #expect(!(try FileManager.default.contentsOfDirectory(atPath: m.mountpoint)).contains("models"), "a removed link is no longer listed")
            // The open file keeps working until it is released.
            #expect(preadFile(fd, 100_000, 1000) == .success(Array(patternBytes(300_000, seed: 8)[100_000..<101_000])))

            // A reload that fails validation changes nothing and says why.
            try m.rewrite(next + "\n  - path: more\n    url: s3://\(extra)\n    endpoint: \(bench)\n")
            let bad = TestMount.run(["reload", m.mountpoint])
            #expect(bad.status != 0 && bad.output.contains("nest"), "an overlap must be refused: \(bad.output)")
            #expect(try String(contentsOfFile: m.path("more/extra/hello.txt"), encoding: .utf8) == "hello")
        }
    }

    @Test(arguments: [
        ("links:\n  - path: a\n    url: s3://bucket-aa\n  - path: a/b\n    url: s3://bucket-bb\n", "nest"),
        ("links:\n  - path: a\n    url: s3://bucket-aa\n    read_only: true\n", "did you mean 'read-only'"),
        ("links:\n  - path: a\n    url: not-a-url\n", "invalid bucket URL"),
        ("links: [", "invalid YAML"),
    ])
    func badConfigIsRefusedWithOneLine(yaml: String, message: String) throws {
        let m = TestMount(config: yaml)
        let r = TestMount.run(["mount", "--config", m.config!, m.mountpoint, "--cache-dir", m.cacheDir])
        #expect(r.status != 0)
        #expect(r.output.contains(message), "\(r.output)")
        #expect(r.output.split(separator: "\n").count == 1, "more than one line: \(r.output)")
    }

    @Test func anUnreachableBucketNamesItsLink() async throws {
        let images = try await freshBucket(Servers.bench, "unri")
        let yaml = """
            links:
              - path: good
                url: s3://\(images)
                endpoint: \(bench)
              - path: broken
                url: s3://no-such-bucket-here
                endpoint: \(moto)
            """
        let m = TestMount(config: yaml)
        let r = TestMount.run(["mount", "--config", m.config!, m.mountpoint, "--cache-dir", m.cacheDir])
        #expect(r.status != 0 && r.output.contains("link '/broken'") && r.output.contains("does not exist"), "\(r.output)")
    }

    /// `metadata-ttl: indefinite`: the whole listing is saved, and a remount lists nothing (the bench store
    /// counts LISTs) until a sync; `import: preload` fills the disk tier, and the reads make no GET.
    @Test func immutableLinksRemountFromTheirListingSnapshotAndPreload() async throws {
        let data = try await freshBucket(Servers.bench, "snap")
        try await putMany(Servers.bench, bucket: data, count: 300) { i in ("d\(i % 7)/sub\(i % 3)/f\(i).bin", patternBytes(1000 + i, seed: UInt64(i))) }
        let yaml = """
            links:
              - path: data
                url: s3://\(data)
                endpoint: \(bench)
                metadata-ttl: indefinite
                metadata: listing
                import: preload
            """
        let m = TestMount(config: yaml)
        func waitFor(_ what: String, _ done: () throws -> Bool) throws {
            for _ in 0..<1200 where !(try done()) { usleep(50_000) }
            #expect(try done(), "waited a minute for \(what)")
        }
        try await withMount(m) { m throws in
            try waitFor("the snapshot") { (try? FileManager.default.contentsOfDirectory(atPath: m.cacheDir + "/listings"))?.contains { $0.hasSuffix(".listing") } ?? false }
            try waitFor("the preload") { ((try m.status()["cache"] as? [String: Any])?["disk"] as? [String: Any])?["blocks"] as? Int ?? 0 >= 300 }
            let before = try await BenchControl.requests(bucket: data)
            let found = spawn("/usr/bin/find", [m.path("data"), "-type", "f"]).stdout.split(separator: "\n")
            #expect(found.count == 300)
            for i in stride(from: 0, to: 300, by: 37) {
                #expect(try readFile(m.path("data/d\(i % 7)/sub\(i % 3)/f\(i).bin")) == patternBytes(1000 + i, seed: UInt64(i)))
            }
            let after = try await BenchControl.requests(bucket: data)
            #expect(after["ListObjectsV2"] == before["ListObjectsV2"], "the preloaded listing answered find")
            #expect(after["GetObject"] == before["GetObject"], "the preloaded data answered the reads")
        }
        let again = TestMount(config: yaml.replacingOccurrences(of: "    import: preload\n", with: "").replacingOccurrences(of: "import: preload", with: "import: lazy"), extra: [])
        try await withMount(TestMount(sharing: again, cacheDir: m.cacheDir)) { m throws in
            let before = try await BenchControl.requests(bucket: data)
            let found = spawn("/usr/bin/find", [m.path("data"), "-type", "f"]).stdout.split(separator: "\n")
            #expect(found.count == 300)
            let after = try await BenchControl.requests(bucket: data)
            #expect(after["ListObjectsV2"] == before["ListObjectsV2"], "a remount from the snapshot made LISTs: \(after["ListObjectsV2"] ?? 0 - (before["ListObjectsV2"] ?? 0))")
            // Until a sync: then the new object appears and the snapshot is saved again.
            _ = try await Servers.bench.putObject(bucket: data, key: "d0/new.bin", body: .bytes([1]), options: PutOptions())
            let r = TestMount.run(["sync", m.path("data")])
            #expect(r.status == 0 && r.output.contains("1 new"), "\(r.output)")
            #expect(FileManager.default.fileExists(atPath: m.path("data/d0/new.bin")))
        }
    }
}
