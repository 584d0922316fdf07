import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// The pre-flight checks of `mount`, each turning a problem into a message that names the thing and the fix.
enum MountChecks {
    static func environment() -> [String: String] { processEnvironment() }

    /// Returns the absolute mountpoint; fails if it is missing, not a directory or already mounted. A stale
    /// lakecache mount (its daemon was killed: "transport endpoint is not connected") is cleared first.
    static func checkMountpoint(_ path: String) throws(CLIFailure) -> String {
        try clearStaleMount(path)
        guard let resolved = realpath(path, nil) else {
            throw CLIFailure(message: "mountpoint \(path) does not exist; create it with: mkdir -p \(path)")
        }
        let absolute = String(cString: resolved)
        free(resolved)
        var st = stat()
        guard stat(absolute, &st) == 0 else { throw CLIFailure(message: "cannot stat mountpoint \(path): \(Errno(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw CLIFailure(message: "mountpoint \(path) is not a directory") }
        if isMounted(absolute) {
            throw CLIFailure(message: "\(path) is already mounted; unmount it first (lakecache unmount \(path), or fusermount3 -u \(path) after a crash)")
        }
        return absolute
    }

    /// Detaches a lakecache mount at `path` whose daemon is gone (kill -9 leaves the kernel side behind, and
    /// every access fails with ENOTCONN), so that mounting again just works.
    static func clearStaleMount(_ path: String) throws(CLIFailure) {
        var st = stat()
        guard stat(path, &st) != 0, errno == ENOTCONN else { return }
        // realpath would fail on the dead mount itself: resolve the parent and append the name.
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let parent = path.hasPrefix("/") ? String(path.dropLast(name.count)) : "./" + String(path.dropLast(name.count))
        var absolute = path
        if let r = realpath(parent.isEmpty ? "/" : parent, nil) {
            let base = String(cString: r)
            free(r)
            absolute = (base == "/" ? "" : base) + "/" + name
        }
        guard fileSystemType(of: absolute) == "fuse.lakecache" else {
            throw CLIFailure(message: "\(path) is a dead FUSE mount of another filesystem (transport endpoint is not connected); clear it with: fusermount3 -uz \(path)")
        }
        let cleared = getuid() == 0 ? umount2(absolute, Int32(MNT_DETACH)) == 0 : runProcess("/bin/fusermount3", ["-uz", absolute]) == 0
        guard cleared else {
            throw CLIFailure(message: "\(path) is a stale lakecache mount (its daemon was killed) and could not be cleared: \(Errno(errno)); run fusermount3 -uz \(path)")
        }
        toStderr("lakecache mount: cleared the stale mount at \(path) left by a daemon that was killed; its journaled uploads resume now\n")
    }

    /// The filesystem type mounted at `path` (mountinfo's field after " - "), if any.
    static func fileSystemType(of path: String) -> String? {
        guard let text = readTextFile("/proc/self/mountinfo") else { return nil }
        var found: String?
        for line in text.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            let fields = halves[0].split(separator: " ")
            guard halves.count == 2, fields.count > 4, unescapeMountinfo(String(fields[4])) == path else { continue }
            found = halves[1].split(separator: " ").first.map(String.init)
        }
        return found
    }

    /// Whether `path` is a mount point, per /proc/self/mountinfo (field 5, with octal escapes).
    static func isMounted(_ path: String) -> Bool { deviceNumber(of: path) != nil }

    /// The `MAJOR:MINOR` of the filesystem mounted at `path` (mountinfo field 3), without touching the mount.
    static func deviceNumber(of path: String) -> String? {
        guard let text = readTextFile("/proc/self/mountinfo") else { return nil }
        var found: String?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { continue }
            // The last matching line is the mount on top.
            if unescapeMountinfo(String(fields[4])) == path { found = String(fields[2]) }
        }
        return found
    }

    static func unescapeMountinfo(_ s: String) -> String {
        var out = [UInt8]()
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func checkFuseDevice() throws(CLIFailure) {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw CLIFailure(message: "/dev/fuse is not usable (\(Errno(e))); install fuse3 and load the fuse module (modprobe fuse), or run the container with --device /dev/fuse")
        }
        close(fd)
    }

    /// Creates the cache directory (0700) if needed and proves it is writable.
    static func prepareCacheDir(_ path: String) throws(CLIFailure) {
        var components: [String] = []
        for part in path.split(separator: "/") {
            components.append(String(part))
            let prefix = (path.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw CLIFailure(message: "cannot create cache directory \(prefix): \(Errno(errno)); choose another with --cache-dir")
            }
        }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw CLIFailure(message: "cache directory \(path) is not a directory; choose another with --cache-dir")
        }
        if st.st_uid == getuid() && (st.st_mode & 0o077) != 0 {
            chmod(path, 0o700)  // the cache holds bucket data: private to its owner
        }
        let probe = path + "/.lakecache-write-test"
        let fd = open(probe, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CLIFailure(message: "cache directory \(path) is not writable (\(Errno(errno))); fix its permissions or choose another with --cache-dir")
        }
        close(fd)
        unlink(probe)
    }

    /// Checks every link's bucket, all at once; the first failure (in link order) names its link.
    static func checkBuckets(_ links: [LinkPlan]) async throws(CLIFailure) {
        let failures = await withTaskGroup(of: (Int, CLIFailure?).self) { group in
            for (i, link) in links.enumerated() {
                group.addTask {
                    do {
                        try await checkBucket(link.bucket, configuration: link.s3)
                        return (i, nil)
                    } catch let error as CLIFailure {
                        return (i, CLIFailure(message: (links.count > 1 || !link.path.isEmpty ? link.label + ": " : "") + error.message, exitCode: error.exitCode))
                    } catch {
                        return (i, CLIFailure(message: "\(link.label): \(error)"))
                    }
                }
            }
            var out: [(Int, CLIFailure)] = []
            for await (i, f) in group { if let f { out.append((i, f)) } }
            return out.sorted { $0.0 < $1.0 }
        }
        if let first = failures.first { throw first.1 }
    }

    /// Checks that the bucket exists and the credentials may use it, so a bad mount fails now, not on first read.
    static func checkBucket(_ bucket: BucketURL, configuration: S3Configuration) async throws(CLIFailure) {
        var config = configuration
        config.retry.maxAttempts = 3
        let client = S3Client(configuration: config)
        defer { client.shutdown() }
        do {
            try await client.headBucket(bucket.bucket)
        } catch let error as ObjectStoreError {
            let at = "at \(configuration.endpoint)"
            switch error.kind {
            case .noSuchBucket:
                throw CLIFailure(message: "bucket '\(bucket.bucket)' does not exist \(at); check the name, --endpoint and --region")
            case .accessDenied, .invalidCredentials:
                throw CLIFailure(message: "access denied to bucket '\(bucket.bucket)' \(at); check the credentials (AWS_ACCESS_KEY_ID, --profile) and the bucket policy")
            case .transport, .timeout:
                throw CLIFailure(message: "cannot reach \(configuration.endpoint): \(error.message); check --endpoint and the network")
            default:
                throw CLIFailure(message: "cannot use bucket '\(bucket.bucket)' \(at): \(error)")
            }
        } catch {
            throw CLIFailure(message: "cannot use bucket '\(bucket.bucket)': \(error)")
        }
    }
}
