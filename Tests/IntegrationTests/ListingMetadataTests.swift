import Foundation
import Testing

import Platform
@testable import ObjectStore

/// A tree with symlinks and modes of its own, written through the mount, is the same tree after a remount
/// with an empty cache, whether a listing or a lookup reaches each path (`ls -l`, `os.walk`, `diff -r`).
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct ListingMetadataTests {
    let moto: String

    init() throws {
        try Servers.requireServers()
        moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
    }

    /// A model cache as the common model-hub layout has it (snapshot files are relative symlinks to blobs),
    /// plus files with modes 0600, 0755 and 0640 and an empty directory.
    static let makeTree = """
        set -e
        cd "$1"
        mkdir -p blobs snapshots/rev1/sub empty
        printf '{"hidden": 768}' > blobs/sha1
        head -c 70000 /dev/urandom > blobs/sha2
        ln -s ../../blobs/sha1 snapshots/rev1/config.json
        ln -s ../../../blobs/sha2 snapshots/rev1/sub/model.bin
        ln -s rev1 snapshots/main
        printf 'secret' > blobs/token; chmod 0600 blobs/token
        printf '#!/bin/sh\\necho hi\\n' > run.sh; chmod 0755 run.sh
        printf 'shared' > shared.txt; chmod 0640 shared.txt
        chmod 0700 snapshots/rev1/sub
        touch -h -d '2024-01-02 03:04:05' snapshots/rev1/config.json blobs/sha1 run.sh
        """

    /// Every path's type, mode, owner, size, mtime (regular files) and link target, from a listing (os.walk's
    /// scandir types, then lstat) and separately by name.
    static let describe = """
        import os, stat, sys, json
        root = sys.argv[1]
        out = {}
        for d, dirs, files in os.walk(root):
            with os.scandir(d) as it:
                for e in it:
                    rel = os.path.relpath(e.path, root)
                    st = os.lstat(e.path)
                    kind = "l" if e.is_symlink() else "d" if e.is_dir(follow_symlinks=False) else "f"
                    out[rel] = [kind, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                st.st_size if kind != "d" else 0,
                                int(st.st_mtime) if kind == "f" else 0,
                                os.readlink(e.path) if kind == "l" else ""]
        print(json.dumps(out, sort_keys=True))
        """

    func run(_ script: String, _ args: [String], python: Bool = false) -> (status: Int32, stdout: String, stderr: String) {
        python ? spawn("/usr/bin/env", ["python3", "-c", script] + args) : spawn("/bin/sh", ["-c", script, "sh"] + args)
    }

    @Test func aTreeWithSymlinksAndModesSurvivesARemountThroughListings() async throws {
        let bucket = try await freshBucket(Servers.moto, "tree")
        let source = NSTemporaryDirectory() + "lakecache-tree-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let made = run(Self.makeTree, [source])
        try #require(made.status == 0, "making the tree: \(made.stderr)")
        let expected = run(Self.describe, [source], python: true)
        try #require(expected.status == 0, "\(expected.stderr)")

        let first = TestMount(bucket: bucket, endpoint: moto)
        try withMountSync(first) { m throws in
            let copied = run("cp -a \"$1\"/. \"$2\"/", [source, m.mountpoint])
            #expect(copied.status == 0, "cp -a into the mount: \(copied.stderr)")
            #expect(flush(m.mountpoint).status == 0)
        }
        // A fresh cache: nothing is known but what the bucket says. Listing first, as ls, tar and rsync do.
        let second = TestMount(bucket: bucket, endpoint: moto)
        try withMountSync(second) { m throws in
            let shown = run(Self.describe, [m.mountpoint], python: true)
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout == expected.stdout, "through a listing:\n\(shown.stdout)\nexpected:\n\(expected.stdout)")
            let diff = run("diff -r --no-dereference \"$1\" \"$2\" && diff -r \"$1\" \"$2\"", [source, m.mountpoint])
            #expect(diff.status == 0, "diff -r: \(diff.stdout) \(diff.stderr)")
            let config = try String(contentsOfFile: m.path("snapshots/rev1/config.json"), encoding: .utf8)
            #expect(config == #"{"hidden": 768}"#, "a snapshot symlink must read through to its blob")
            // ls -l's columns (type, mode, owner, size, name and target), as a user compares them; a
            // directory's size is the local filesystem's block size there, 0 here.
            let columns = "ls -lR --time-style=+ \"$1\" | awk 'NF > 2 {$2=\"\"; if ($1 ~ /^d/) $5=\"\"; print}' | sed 's|'\"$1\"'||'"
            let lsSource = run(columns, [source])
            let lsMount = run(columns, [m.mountpoint])
            #expect(lsMount.stdout == lsSource.stdout, "ls -lR:\n\(lsMount.stdout)\nexpected:\n\(lsSource.stdout)")
        }
        // By name first, in another fresh mount: the same answers.
        let third = TestMount(bucket: bucket, endpoint: moto)
        try withMountSync(third) { m throws in
            var byName = "import os, stat, sys, json\nroot = sys.argv[1]\nout = {}\n"
            byName += "for rel, kind in json.loads(sys.argv[2]).items():\n"
            byName += "    st = os.lstat(os.path.join(root, rel))\n"
            byName += "    out[rel] = stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)\n"
            byName += "print(json.dumps(out, sort_keys=True))\n"
            let a = run(byName, [m.mountpoint, expected.stdout], python: true)
            let b = run(byName, [source, expected.stdout], python: true)
            #expect(a.status == 0 && a.stdout == b.stdout, "by name: \(a.stdout) \(a.stderr)\nexpected: \(b.stdout)")
        }
    }

    /// Under `--metadata summary` the same tree, written by one mount, is listed exactly by a fresh one with no
    /// HEAD per file: the directories' summaries describe the files (the bench store counts the requests).
    /// The same listing under `exact` asks for each file.
    @Test func summaryPolicyListsTheTreeWithoutAHeadPerFile() async throws {
        let benchEndpoint = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "sumtree")
        let source = NSTemporaryDirectory() + "lakecache-tree-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source) }
        // Twenty files over the whole-object GET size, so that under `exact` each costs a HEAD.
        let weights = "mkdir \"$1\"/weights; for i in $(seq 1 20); do head -c 100000 /dev/urandom > \"$1\"/weights/w$i; chmod 0640 \"$1\"/weights/w$i; done"
        try #require(run(Self.makeTree, [source]).status == 0 && run(weights, [source]).status == 0)
        let expected = run(Self.describe, [source], python: true)
        try #require(expected.status == 0, "\(expected.stderr)")
        let summary = ["--metadata", "summary"]

        try await withMount(TestMount(bucket: bucket, endpoint: benchEndpoint, extra: summary)) { m throws in
            let copied = run("cp -a \"$1\"/. \"$2\"/", [source, m.mountpoint])
            #expect(copied.status == 0, "cp -a into the mount: \(copied.stderr)")
            #expect(flush(m.mountpoint).status == 0)
        }
        // Unmount wrote the summaries: one per directory that has files.
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try await Servers.bench.listObjects(ListObjectsRequest(bucket: bucket, prefix: "", continuationToken: token))
            keys += page.objects.map(\.key)
            token = page.nextContinuationToken
        } while token != nil
        let summaries = Set(keys.filter { $0.hasSuffix(".lakecache-metadata") })
        #expect(summaries == [".lakecache-metadata", "blobs/.lakecache-metadata", "snapshots/.lakecache-metadata", "snapshots/rev1/.lakecache-metadata",
                              "snapshots/rev1/sub/.lakecache-metadata", "weights/.lakecache-metadata"], "\(summaries.sorted())")

        func listed(_ extra: [String]) async throws -> (shown: String, heads: Int) {
            var result = ("", 0)
            try await withMount(TestMount(bucket: bucket, endpoint: benchEndpoint, extra: extra)) { m throws in
                let before = try await BenchControl.requests(bucket: bucket)
                let shown = run(Self.describe, [m.mountpoint], python: true)
                #expect(shown.status == 0, "\(shown.stderr)")
                let after = try await BenchControl.requests(bucket: bucket)
                result = (shown.stdout, (after["HeadObject"] ?? 0) - (before["HeadObject"] ?? 0))
                if extra == summary {
                    let diff = run("diff -r --no-dereference \"$1\" \"$2\" && diff -r \"$1\" \"$2\"", [source, m.mountpoint])
                    #expect(diff.status == 0, "diff -r: \(diff.stdout) \(diff.stderr)")
                    #expect(!FileManager.default.fileExists(atPath: m.path(".lakecache-metadata")), "the summary is not a file of the mount")
                }
            }
            return result
        }
        let bySummary = try await listed(summary)
        #expect(bySummary.shown == expected.stdout, "through a summarised listing:\n\(bySummary.shown)\nexpected:\n\(expected.stdout)")
        // The HEADs left are the directories' markers (their modes), never a file's.
        #expect(bySummary.heads <= 7, "\(bySummary.heads) HEADs")
        let byExact = try await listed([])
        #expect(byExact.shown == expected.stdout)
        #expect(byExact.heads >= 20 + bySummary.heads, "exact: \(byExact.heads) HEADs, summary: \(bySummary.heads)")
        // rm -rf leaves nothing behind: no directory is kept non-empty by its summary, and none is left over.
        try await withMount(TestMount(bucket: bucket, endpoint: benchEndpoint, extra: summary)) { m throws in
            let removed = run("rm -rf \"$1\"/*", [m.mountpoint])
            #expect(removed.status == 0, "rm -rf: \(removed.stderr)")
        }
        let left = try await Servers.bench.listObjects(ListObjectsRequest(bucket: bucket, prefix: ""))
        #expect(left.objects.isEmpty, "left in the bucket: \(left.objects.map(\.key))")
    }

    /// A summary larger than the first read (256 KiB; here 4,000 entries) is fetched whole: a directory of
    /// objects another tool wrote, described by a summary made for them, lists with their modes and owners
    /// and no request per file.
    @Test func aLargeSummaryIsReadWhole() async throws {
        let benchEndpoint = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "sumbig")
        let count = 4_000
        try await putMany(Servers.bench, bucket: bucket, count: count) { i in (String(format: "big/f%05d", i), Array("file \(i)".utf8)) }
        var lines = ["lakecache-directory-summary 1"]
        var token: String?
        repeat {
            let page = try await Servers.bench.listObjects(ListObjectsRequest(bucket: bucket, prefix: "big/", continuationToken: token))
            for o in page.objects {
                let etag = o.etag.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\"", with: "%22")
                lines.append("\(o.key.dropFirst(4))\t\(etag)\t\(o.size)\t\(0o100600)\t5\t6\t1700000000.0\t\t")
            }
            token = page.nextContinuationToken
        } while token != nil
        let body = Array((lines.joined(separator: "\n") + "\n").utf8)
        try #require(body.count > 256 << 10 && lines.count == count + 1)
        _ = try await Servers.bench.putObject(bucket: bucket, key: "big/.lakecache-metadata", body: .bytes(body), options: PutOptions())

        try await withMount(TestMount(bucket: bucket, endpoint: benchEndpoint, extra: ["--metadata", "summary"])) { m throws in
            let before = try await BenchControl.requests(bucket: bucket)
            let check = """
                import os, stat, sys
                bad = [e.name for e in os.scandir(sys.argv[1]) if (lambda st: (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) != (0o600, 5, 6, 1700000000))(os.lstat(e.path))]
                n = len(os.listdir(sys.argv[1]))
                print(n, len(bad), bad[:3])
                """
            let r = run(check, [m.path("big")], python: true)
            #expect(r.status == 0 && r.stdout.hasPrefix("\(count) 0 "), "\(r.stdout) \(r.stderr)")
            let after = try await BenchControl.requests(bucket: bucket)
            func delta(_ op: String) -> Int { (after[op] ?? 0) - (before[op] ?? 0) }
            #expect(delta("GetObject") == 2, "the summary's first 256 KiB, then the whole of it: \(delta("GetObject"))")
            #expect(delta("HeadObject") <= 2, "no HEAD per file: \(delta("HeadObject"))")
        }
    }
}
