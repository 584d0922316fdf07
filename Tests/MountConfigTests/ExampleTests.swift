import ObjectStore
import Platform
import Testing

@testable import MountConfig

@Suite struct ExampleTests {
    @Test func exampleParsesToItsValues() throws {
        let config = try MountConfig.parse(exampleYAML, file: "lake.yaml")
        #expect(config.file == "lake.yaml")

        var settings = MountSettings()
        settings.cacheDir = "/nvme/lakecache"
        settings.cacheSize = 200 << 30
        settings.memoryCache = 8 << 30
        settings.writeMode = .async
        settings.metadataTTL = .seconds(60)
        #expect(config.settings == settings)

        var imagenet = LinkSpec(path: "datasets/imagenet", url: BucketURL(bucket: "datasets", prefix: "imagenet/"), line: 8)
        imagenet.readOnly = true
        imagenet.metadataTTL = .indefinite
        imagenet.metadata = "listing"
        imagenet.include = [try KeyGlob("train/**"), try KeyGlob("val/**")]
        imagenet.exclude = [try KeyGlob("**/*.tmp")]
        imagenet.importMode = .preload
        imagenet.writeMode = .async  // from the top level
        imagenet.ownKeys = ["path", "url", "read-only", "metadata-ttl", "metadata", "include", "exclude", "import"]

        var checkpoints = LinkSpec(path: "checkpoints", url: BucketURL(bucket: "ckpt-bucket", prefix: "run42/"), line: 16)
        checkpoints.writeMode = .async
        checkpoints.syncInterval = 300
        checkpoints.metadataTTL = .seconds(60)  // from the top level
        checkpoints.ownKeys = ["path", "url", "write-mode", "sync-interval"]

        var models = LinkSpec(path: "models", url: BucketURL(bucket: "models", prefix: ""), line: 20)
        models.endpoint = "http://minio.internal:9000"
        models.region = "us-east-1"
        models.profile = "onprem"
        models.noSignRequest = false
        models.addressingStyle = "path"
        models.readOnly = true
        models.negativeTTL = .seconds(5)
        models.writeMode = .async
        models.metadataTTL = .seconds(60)
        models.ownKeys = [
            "path", "url", "endpoint", "region", "profile", "no-sign-request", "addressing-style", "read-only", "negative-ttl",
        ]

        #expect(config.links.count == 3)
        #expect(config.links == [imagenet, checkpoints, models])
    }

    @Test func everyKeyIsAccepted() throws {
        let text = """
            cache-dir: /var/cache/lc
            cache-size: 1T
            memory-cache: 512M
            block-size: 8M
            part-size: 32M
            upload-concurrency: 12
            max-concurrency: 128
            fuse-threads: 32
            dir-read-ahead: 0
            metadata-read-ahead: 100
            allow-other: yes
            uid: 1000
            gid: 4294967295
            file-mode: "0640"
            dir-mode: 0750
            log-level: debug
            metrics-address: 127.0.0.1:9464
            events-address: 0.0.0.0:8089
            events-token-file: /etc/lakecache/token
            pin-budget: 50G
            close-durability: kernel
            endpoint: https://s3.example.com
            region: eu-west-1
            profile: lake
            no-sign-request: true
            addressing-style: virtual
            read-only: false
            write-mode: sync
            metadata-ttl: 2h
            negative-ttl: 30s
            metadata: exact
            import: lazy
            sync-interval: 45
            links:
              - path: /
                url: s3://lake
                endpoint: http://localhost:9000
                region: local
                profile: other
                no-sign-request: false
                addressing-style: auto
                read-only: true
                write-mode: async
                metadata-ttl: 0
                negative-ttl: indefinite
                metadata: listing
                import: preload
                sync-interval: 1d
                include: "*.parquet"
                exclude: [tmp/**]
                on-create: preload
            """
        let config = try MountConfig.parse(text, file: "all.yaml")
        let s = config.settings
        #expect(s.cacheDir == "/var/cache/lc")
        #expect(s.cacheSize == 1 << 40)
        #expect(s.memoryCache == 512 << 20)
        #expect(s.blockSize == 8 << 20)
        #expect(s.partSize == 32 << 20)
        #expect(s.uploadConcurrency == 12)
        #expect(s.maxConcurrency == 128)
        #expect(s.fuseThreads == 32)
        #expect(s.dirReadAhead == 0)
        #expect(s.metadataReadAhead == 100)
        #expect(s.allowOther == true)
        #expect(s.uid == 1000)
        #expect(s.gid == UInt32.max)
        #expect(s.fileMode == 0o640)
        #expect(s.dirMode == 0o750)
        #expect(s.logLevel == "debug")
        #expect(s.metricsAddress == "127.0.0.1:9464")
        #expect(s.eventsAddress == "0.0.0.0:8089")
        #expect(s.eventsTokenFile == "/etc/lakecache/token")
        #expect(s.pinBudget == 50 << 30)
        #expect(s.closeDurability == "kernel")
        #expect(s.endpoint == "https://s3.example.com")
        #expect(s.region == "eu-west-1")
        #expect(s.profile == "lake")
        #expect(s.noSignRequest == true)
        #expect(s.addressingStyle == "virtual")
        #expect(s.readOnly == false)
        #expect(s.writeMode == .sync)
        #expect(s.metadataTTL == .seconds(7200))
        #expect(s.negativeTTL == .seconds(30))
        #expect(s.metadata == "exact")
        #expect(s.importMode == .lazy)
        #expect(s.syncInterval == 45)

        // Every field the link sets wins over the top level.
        var link = LinkSpec(path: "", url: BucketURL(bucket: "lake", prefix: ""), line: 35)
        link.endpoint = "http://localhost:9000"
        link.region = "local"
        link.profile = "other"
        link.noSignRequest = false
        link.addressingStyle = "auto"
        link.readOnly = true
        link.writeMode = .async
        link.metadataTTL = .seconds(0)
        link.negativeTTL = .indefinite
        link.metadata = "listing"
        link.importMode = .preload
        link.syncInterval = 86400
        link.include = [try KeyGlob("*.parquet")]
        link.exclude = [try KeyGlob("tmp/**")]
        link.onCreate = "preload"
        link.ownKeys = Set(["path", "url", "include", "exclude", "on-create"] + LinkFields.keys)
        #expect(config.links == [link])
    }

    @Test func topLevelDefaultsFillEveryLinkField() throws {
        let text = """
            endpoint: https://s3.example.com
            region: eu-west-1
            profile: lake
            no-sign-request: true
            addressing-style: virtual
            read-only: true
            write-mode: sync
            metadata-ttl: indefinite
            negative-ttl: 10
            metadata: listing
            import: preload
            sync-interval: 10m
            links:
              - path: a
                url: s3://bucket-a
            """
        let link = try #require(parsed(text)?.links.first)
        #expect(link.endpoint == "https://s3.example.com")
        #expect(link.region == "eu-west-1")
        #expect(link.profile == "lake")
        #expect(link.noSignRequest == true)
        #expect(link.addressingStyle == "virtual")
        #expect(link.readOnly == true)
        #expect(link.writeMode == .sync)
        #expect(link.metadataTTL == .indefinite)
        #expect(link.negativeTTL == .seconds(10))
        #expect(link.metadata == "listing")
        #expect(link.importMode == .preload)
        #expect(link.syncInterval == 600)
        #expect(link.onCreate == nil)
        #expect(link.include.isEmpty && link.exclude.isEmpty)
        #expect(link.ownKeys == ["path", "url"])
    }

    @Test func unsetFieldsStayNil() throws {
        let config = try #require(parsed(file()))
        #expect(config.settings == MountSettings())
        var link = LinkSpec(path: "data", url: BucketURL(bucket: "bucket-a", prefix: "prefix/"), line: 2)
        link.ownKeys = ["path", "url"]
        #expect(config.links == [link])
    }

    @Test(arguments: ["/", "\"\"", "''", "//", "/data/"])
    func rootAndSlashForms(_ written: String) throws {
        let config = try #require(parsed("links:\n  - path: \(written)\n    url: s3://bucket-a\n"))
        #expect(config.links.map(\.path) == [written == "/data/" ? "data" : ""])
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let text = """
            x-common: &common
              read-only: true
              include: &images ["*.jpg", "*.png"]
            links:
              - <<: *common
                path: a
                url: s3://bucket-a
              - <<: *common
                path: b
                url: s3://bucket-b
                read-only: false
                exclude: *images
            """
        let links = try #require(parsed(text)?.links)
        #expect(links.map(\.readOnly) == [true, false])
        #expect(links[0].include.map(\.pattern) == ["*.jpg", "*.png"])
        #expect(links[1].exclude.map(\.pattern) == ["*.jpg", "*.png"])
        #expect(links.map(\.line) == [5, 8])
        // Merged keys are the link's own: they were written for it, not for every link.
        #expect(links[0].ownKeys == ["path", "url", "read-only", "include"])
        #expect(links[1].ownKeys == ["path", "url", "read-only", "include", "exclude"])
    }
}

/// The links config the Kubernetes ConfigMap carries (deploy/kubernetes/configmap.yaml) is one lakecache
/// accepts: the schema check of the manifests cannot see inside the `lake.yaml` string.
@Suite struct KubernetesConfigMapTests {
    @Test func theConfigMapsLinksConfigParses() throws {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try #require(readTextFile("/" + root + "/deploy/kubernetes/configmap.yaml"))
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.trimmingWhitespace() == "lake.yaml: |" })
        lines = Array(lines[(start + 1)...].prefix { $0.hasPrefix("    ") || $0.isEmpty }).map { String($0.dropFirst(min(4, $0.count))) }
        let config = try MountConfig.parse(lines.joined(separator: "\n"), file: "configmap.yaml:lake.yaml")
        #expect(config.links.map(\.path) == ["datasets/imagenet", "checkpoints", "models"])
        #expect(config.settings.allowOther == true)
        #expect(config.settings.metricsAddress == "0.0.0.0:9464")
    }
}
