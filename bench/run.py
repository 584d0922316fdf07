#!/usr/bin/env python3
"""Side-by-side benchmarks: lakecache, s3fs, rclone (--vfs-cache-mode full), local disk and raw S3.

Everything runs against one bench object store on 127.0.0.1 (profile s3-like by default), in one run,
and the results go to bench-results/results.json and docs/benchmarks.md (with docs/benchmarks.png).

Usage: bench/run.py [--quick] [--profile s3-like|unshaped] [--large] [--systems lakecache,s3fs,...]
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("LAKECACHE_BUILD_DIR", os.path.join(ROOT, ".build/release"))
LAKECACHE = os.path.join(BUILD, "lakecache")
S3BENCH = os.path.join(BUILD, "lakecache-s3bench")
BUCKET = "bench"
KEY, SECRET = "benchkey", "benchsecret"
MiB = 1 << 20
GiB = 1 << 30


def log(msg):
    print("bench: " + msg, flush=True)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        log("warning: cannot drop the page cache (not root?); cold runs may be warm")


def prefault_memory(fraction=0.8):
    """Touches most of the free memory once, then frees it.

    In a VM whose memory the host backs on first touch (Firecracker here), the first system to use a few GiB
    pays for that touch: measured on this machine, a 1 GiB checkpoint right after a 1 GiB read took 6.2 s to
    close, and 2.3 s once the memory had been touched before. Touching it up front makes the order of the
    systems irrelevant.
    """
    import mmap
    avail = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    size = int(avail * fraction) // mmap.PAGESIZE * mmap.PAGESIZE
    if size <= 0:
        return 0
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    chunk = b"\1" * (64 * mmap.PAGESIZE)
    for off in range(0, size, len(chunk)):
        n = min(len(chunk), size - off)
        m[off:off + n] = chunk[:n]
    m.close()
    return size


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def deterministic_file(path, size, seed):
    """Pseudo-random bytes from AES-CTR over zeros: fast and the same on every machine."""
    key = "%032x" % seed
    with open(path, "wb") as out:
        p1 = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-K", key, "-iv", "0" * 32, "-nosalt", "-in", "/dev/zero"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        left = size
        while left > 0:
            chunk = p1.stdout.read(min(left, 8 * MiB))
            out.write(chunk)
            left -= len(chunk)
        p1.kill()
        p1.wait()


class Env:
    def __init__(self, args):
        self.args = args
        base = os.environ.get("LAKECACHE_BENCH_DIR") or tempfile.mkdtemp(prefix="lakecache-bench-", dir="/var/tmp")
        self.work = base
        self.store_proc = None
        self.mounts = []
        self.port = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start_store(self):
        port_file = os.path.join(self.work, "store.port")
        self.store_proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools/benchstore/benchstore.py"), "--root", os.path.join(self.work, "store"),
             "--port-file", port_file, "--profile", self.args.profile, "--bucket", BUCKET],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "store.log"), "w"), start_new_session=True)
        # A loaded machine can take many seconds to import and bind; wait while the store lives.
        deadline = time.time() + 120
        while time.time() < deadline and self.store_proc.poll() is None:
            if os.path.exists(port_file):
                self.port = int(open(port_file).read())
                return
            time.sleep(0.05)
        state = "exited with %s" % self.store_proc.returncode if self.store_proc.poll() is not None else "no port after 120 s"
        try:
            tail = open(os.path.join(self.work, "store.log")).read()[-2000:]
        except OSError:
            tail = ""
        # The work dir (and the log in it) goes with cleanup, so the log's tail goes into the message.
        raise SystemExit("bench: the bench store did not start (%s); its log ends:\n%s" % (state, tail or "(empty)"))

    def stats(self):
        with urllib.request.urlopen(self.endpoint + "/_bench/stats") as r:
            return json.load(r).get("buckets", {}).get(BUCKET, {"requests": {}, "bytes_out": 0})

    def s3(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            region_name="us-east-1", config=Config(max_pool_connections=32, retries={"max_attempts": 5}))

    def cleanup(self):
        for m in reversed(self.mounts):
            try:
                m.unmount()
            except Exception as e:
                log("cleanup: %s" % e)
        if self.store_proc and self.store_proc.poll() is None:
            os.killpg(self.store_proc.pid, signal.SIGTERM)
            self.store_proc.wait(timeout=10)
        if not os.environ.get("LAKECACHE_BENCH_DIR"):
            shutil.rmtree(self.work, ignore_errors=True)


class Sizes:
    def __init__(self, quick, large):
        self.quick = quick
        self.small_files = 400 if quick else 4000
        self.small_dirs = 10 if quick else 40
        self.small_size = 16 * 1024
        self.big = (128 if quick else 1024) * MiB
        self.dir_entries = 1000 if quick else 10000
        self.random_ops = 300 if quick else 2000
        self.checkpoint = (128 if quick else 1024) * MiB
        self.large_checkpoint = 4096 * MiB if large else 0
        # A link of many small objects (200 directories), for mount, snapshot and sync.
        self.link_objects = 20000 if quick else 200000


def object_record(objdir, key):
    """The bench store's record of `key` (a JSON file naming its segments), without its extension."""
    return os.path.join(objdir, hashlib.sha256(key.encode()).hexdigest())


def seed_object(objdir, key, data=None, path=None):
    """Writes one object in the bench store's on-disk format (it indexes these files when it starts)."""
    record = object_record(objdir, key)
    seg = record + ".seed.00000"
    if path is not None:
        os.link(path, seg)  # the local copy and the stored object share their bytes
        md5 = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(8 * MiB), b""):
                md5.update(chunk)
        size = os.path.getsize(path)
    else:
        with open(seg, "wb") as f:
            f.write(data)
        md5 = hashlib.md5(data)
        size = len(data)
    with open(record + ".json", "w") as f:
        json.dump({"key": key, "size": size, "etag": md5.hexdigest(), "mtime": time.time(), "metadata": {},
                   "content_type": None, "segments": [[seg, size]]}, f)


def generate(env, sz):
    """Seeds the store (before it starts) and a local copy (the local-disk system) with the same bytes."""
    local = os.path.join(env.work, "local")
    objdir = os.path.join(env.work, "store", BUCKET, "objects")
    os.makedirs(objdir, exist_ok=True)
    os.makedirs(os.path.join(env.work, "store", BUCKET, "uploads"), exist_ok=True)
    rng = random.Random(1234)
    objects = []
    for i in range(sz.small_files):
        objects.append(("small/d%02d/f%05d.bin" % (i % sz.small_dirs, i), rng.randbytes(sz.small_size)))
    for i in range(sz.dir_entries):
        objects.append(("dir10k/e%05d" % i, b"x" * 100))
    log("seeding a link of %d objects (store only)" % sz.link_objects)
    for i in range(sz.link_objects):
        seed_object(objdir, "link/d%03d/o%06d" % (i % 200, i), data=b"%08d" % i)
    log("seeding %d small objects" % len(objects))
    for key, data in objects:
        path = os.path.join(local, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        seed_object(objdir, key, data=data)
    os.makedirs(os.path.join(local, "big"), exist_ok=True)
    for name, seed in (("a.bin", 1), ("b.bin", 2)):
        path = os.path.join(local, "big", name)
        deterministic_file(path, sz.big, seed)
        seed_object(objdir, "big/" + name, path=path)
    log("seeded two %d MiB objects" % (sz.big // MiB))
    deterministic_file(os.path.join(env.work, "checkpoint.bin"), sz.checkpoint, 3)
    if sz.large_checkpoint:
        deterministic_file(os.path.join(env.work, "checkpoint-large.bin"), sz.large_checkpoint, 4)
    return local


def run_json(cmd):
    """Runs a JSON-printing tool; a failure is retried once (the machine is shared), then raised with its stderr."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    for attempt in (1, 2):
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode == 0:
            return json.loads(p.stdout.strip().splitlines()[-1])
        log("%s failed (exit %d, attempt %d): %s" % (os.path.basename(cmd[0]), p.returncode, attempt, p.stderr.strip()[-500:]))
    raise SystemExit("bench: %s failed twice; see the lines above" % " ".join(cmd[:2]))


# ---------------------------------------------------------------------------------------------- systems

class System:
    name = "?"
    kind = "fuse"

    def __init__(self, env):
        self.env = env
        self.mountpoint = os.path.join(env.work, "mnt-" + self.name)
        self.cache = os.path.join(env.work, "cache-" + self.name)

    def fresh(self):
        """Unmounts if needed, empties the cache directory, mounts."""
        self.unmount()
        shutil.rmtree(self.cache, ignore_errors=True)
        os.makedirs(self.cache, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        self.mount()
        deadline = time.time() + 30
        while not is_mounted(self.mountpoint):
            if time.time() > deadline:
                raise RuntimeError("%s did not mount" % self.name)
            time.sleep(0.1)
        if self not in self.env.mounts:
            self.env.mounts.append(self)

    def unmount(self):
        if is_mounted(self.mountpoint):
            subprocess.run(["umount", self.mountpoint], capture_output=True)
            deadline = time.time() + 60
            while is_mounted(self.mountpoint) and time.time() < deadline:
                time.sleep(0.2)
            if is_mounted(self.mountpoint):
                subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
        pid = self.pid()
        deadline = time.time() + 30
        while pid and os.path.exists("/proc/%d" % pid) and time.time() < deadline:
            time.sleep(0.1)

    def path(self, rel):
        return os.path.join(self.mountpoint, rel)

    def pid(self):
        out = subprocess.run(["pgrep", "-f", self.mountpoint], capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def peak_rss(self):
        pid = self.pid()
        if not pid:
            return None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None


class LakeCache(System):
    name = "lakecache"
    options = ["--memory-cache", "2G", "--cache-size", "50G"]
    extra = []

    def mount(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
        subprocess.run([LAKECACHE, "mount", "s3://" + BUCKET, self.mountpoint, "--endpoint", self.env.endpoint,
                        "--cache-dir", self.cache] + self.options + self.extra, check=True, env=env)

    def remount(self, extra):
        """Mounts again over the same cache directory with extra options (the write mode is per mount)."""
        self.unmount()
        self.extra = extra
        self.mount()
        deadline = time.time() + 30
        while not is_mounted(self.mountpoint):
            if time.time() > deadline:
                raise RuntimeError("lakecache did not mount again")
            time.sleep(0.1)

    def unmount(self):
        if is_mounted(self.mountpoint):
            subprocess.run([LAKECACHE, "unmount", self.mountpoint], capture_output=True)
        super().unmount()


class S3FS(System):
    name = "s3fs"
    options = ["use_cache={cache}", "parallel_count=16", "multipart_size=16", "max_stat_cache_size=100000",
               "stat_cache_expire=60", "enable_noobj_cache", "use_path_request_style"]

    def mount(self):
        pw = os.path.join(self.env.work, "s3fs.passwd")
        with open(pw, "w") as f:
            f.write("%s:%s\n" % (KEY, SECRET))
        os.chmod(pw, 0o600)
        opts = ",".join(o.format(cache=self.cache) for o in self.options)
        subprocess.run(["s3fs", BUCKET, self.mountpoint, "-o", "url=%s,passwd_file=%s,%s" % (self.env.endpoint, pw, opts)], check=True)


class Rclone(System):
    name = "rclone"
    options = ["--vfs-cache-mode", "full", "--vfs-cache-max-size", "50G", "--transfers", "16", "--buffer-size", "16M",
               "--vfs-read-chunk-size", "16M", "--s3-upload-concurrency", "8", "--s3-chunk-size", "16M",
               "--dir-cache-time", "60s", "--attr-timeout", "60s"]

    def mount(self):
        env = dict(os.environ)
        env.pop("AWS_CA_BUNDLE", None)  # rclone fails while it is set
        remote = ":s3,provider=Other,endpoint='%s',access_key_id=%s,secret_access_key=%s:%s" % (self.env.endpoint, KEY, SECRET, BUCKET)
        subprocess.Popen(["rclone", "mount", remote, self.mountpoint, "--cache-dir", self.cache] + self.options,
                         env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.env.work, "rclone.log"), "a"),
                         start_new_session=True)


class Local(System):
    name = "local"
    kind = "limit"

    def __init__(self, env, local):
        self.env = env
        self.mountpoint = local

    def fresh(self):
        pass

    def unmount(self):
        pass

    def peak_rss(self):
        return None


# ---------------------------------------------------------------------------------------------- workloads

def small_epoch(root, threads=8, seed=0):
    t0 = time.time()
    files = []
    for d, _, names in os.walk(os.path.join(root, "small")):
        files += [os.path.join(d, n) for n in names]
    random.Random(seed).shuffle(files)

    def rd(p):
        with open(p, "rb") as f:
            return len(f.read())
    with ThreadPoolExecutor(threads) as ex:
        total = sum(ex.map(rd, files))
    dt = time.time() - t0
    return {"files_per_s": len(files) / dt, "seconds": dt, "files": len(files), "bytes": total}


def ls_l(root):
    t0 = time.time()
    n = 0
    for e in os.scandir(os.path.join(root, "dir10k")):
        os.lstat(e.path)
        n += 1
    dt = time.time() - t0
    return {"seconds": dt, "entries": n, "entries_per_s": n / dt}


def seq_read(path):
    t0 = time.time()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(MiB)
            if not b:
                break
            n += len(b)
    dt = time.time() - t0
    return {"mb_per_s": n / dt / 1e6, "seconds": dt, "bytes": n}


def concurrent_readers(path, readers=4):
    t0 = time.time()
    with ThreadPoolExecutor(readers) as ex:
        total = sum(r["bytes"] for r in ex.map(lambda _: seq_read(path), range(readers)))
    dt = time.time() - t0
    return {"mb_per_s": total / dt / 1e6, "seconds": dt}


def random_reads(path, ops, threads=4):
    size = os.path.getsize(path)
    rng = random.Random(9)
    plan = []
    for _ in range(ops):
        length = int(2 ** rng.uniform(12, 20))
        plan.append((rng.randrange(0, size - length), length))
    fd = os.open(path, os.O_RDONLY)
    t0 = time.time()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(lambda p: os.pread(fd, p[1], p[0]), plan))
    dt = time.time() - t0
    os.close(fd)
    return {"iops": ops / dt, "seconds": dt}


def checkpoint_write(env, system, src, key):
    dst = system.path(key)
    s3 = env.s3()
    size = os.path.getsize(src)
    t0 = time.time()
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, "rb") as f, open(dst, "wb") as out:
            while True:
                b = f.read(8 * MiB)
                if not b:
                    break
                out.write(b)
    except OSError as e:
        return {"error": "write refused: %s" % e.strerror}
    t_close = time.time() - t0
    if system.kind == "limit":
        # Local disk: durable means fsync'd.
        fd = os.open(dst, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        return {"close_seconds": t_close, "durable_seconds": time.time() - t0, "bytes": size}
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size:
                break
        except Exception:
            pass
        time.sleep(0.05)
    return {"close_seconds": t_close, "durable_seconds": time.time() - t0, "bytes": size}


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def run_system(env, sys_, sz, results):
    name = sys_.name
    r = results.setdefault(name, {})
    log("== %s" % name)
    sys_.fresh()
    drop_caches()
    r["small_cold"] = small_epoch(sys_.mountpoint, seed=1)
    drop_caches()
    r["small_warm"] = small_epoch(sys_.mountpoint, seed=2)
    sys_.fresh()
    drop_caches()
    r["ls_cold"] = ls_l(sys_.mountpoint)
    r["ls_warm"] = ls_l(sys_.mountpoint)
    drop_caches()
    r["seq_cold"] = seq_read(sys_.path("big/a.bin"))
    drop_caches()
    r["seq_warm"] = seq_read(sys_.path("big/a.bin"))
    drop_caches()
    before = env.stats()["bytes_out"] if sys_.kind == "fuse" else 0
    r["concurrent_cold"] = concurrent_readers(sys_.path("big/b.bin"))
    if sys_.kind == "fuse":
        r["concurrent_cold"]["backend_bytes_ratio"] = (env.stats()["bytes_out"] - before) / sz.big
    r["random_warm"] = random_reads(sys_.path("big/a.bin"), sz.random_ops)
    # Every write workload starts with no dirty data left by the ones before (its own or another system's).
    drop_caches()
    r["checkpoint"] = checkpoint_write(env, sys_, os.path.join(env.work, "checkpoint.bin"), "ckpt/%s/model.bin" % name)
    if sz.large_checkpoint:
        drop_caches()
        r["checkpoint_large"] = checkpoint_write(env, sys_, os.path.join(env.work, "checkpoint-large.bin"), "ckpt/%s/large.bin" % name)
    if "error" not in r["checkpoint"]:
        drop_caches()
        gets = env.stats()["requests"].get("GetObject", 0) if sys_.kind == "fuse" else 0
        r["restore"] = seq_read(sys_.path("ckpt/%s/model.bin" % name))
        if sys_.kind == "fuse":
            r["restore"]["backend_gets"] = env.stats()["requests"].get("GetObject", 0) - gets
    r["peak_rss_bytes"] = sys_.peak_rss()
    if isinstance(sys_, LakeCache):
        run_metadata_listing(env, sys_, results)
        run_link(env, sz, results)
        run_warmup(env, sys_, sz, results)
        # The same checkpoint with close() waiting for the bucket, beside the default async close.
        sys_.remount(["--write-mode", "sync"])
        drop_caches()
        r["checkpoint_sync"] = checkpoint_write(env, sys_, os.path.join(env.work, "checkpoint.bin"), "ckpt/%s/model-sync.bin" % name)
        # And with close() waiting only for the page cache (the journal record written, the fdatasync after).
        sys_.remount(["--close-durability", "kernel"])
        drop_caches()
        r["checkpoint_kernel"] = checkpoint_write(env, sys_, os.path.join(env.work, "checkpoint.bin"), "ckpt/%s/model-kernel.bin" % name)
        sys_.extra = []
    sys_.unmount()


def run_metadata_listing(env, sys_, results):
    """The metadata workloads again with `--metadata listing` (datasets of plain objects): no request per file."""
    log("== lakecache --metadata listing (metadata workloads)")
    r = results.setdefault("lakecache-listing", {})
    sys_.extra = ["--metadata", "listing"]
    sys_.fresh()
    drop_caches()
    r["small_cold"] = small_epoch(sys_.mountpoint, seed=1)
    drop_caches()
    r["small_warm"] = small_epoch(sys_.mountpoint, seed=2)
    sys_.fresh()
    drop_caches()
    before = env.stats()["requests"]
    r["ls_cold"] = ls_l(sys_.mountpoint)
    after = env.stats()["requests"]
    r["ls_cold"]["requests"] = sum(after.values()) - sum(before.values())
    r["ls_warm"] = ls_l(sys_.mountpoint)
    sys_.extra = []
    sys_.unmount()


def run_link(env, sz, results):
    """A link of `sz.link_objects` objects with `metadata-ttl: indefinite`: mount and list it cold, again
    from its listing snapshot, then sync it after 1% of the objects changed."""
    log("== lakecache: a link of %d objects (mount and list, snapshot, sync)" % sz.link_objects)
    r = results.setdefault("link", {"objects": sz.link_objects})
    mp = os.path.join(env.work, "mnt-link")
    cache = os.path.join(env.work, "cache-link")
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(mp, exist_ok=True)
    config = os.path.join(env.work, "link.yaml")
    with open(config, "w") as f:
        f.write("links:\n  - path: data\n    url: s3://%s/link\n    endpoint: %s\n    metadata-ttl: indefinite\n"
                "    metadata: listing\n    read-only: true\n" % (BUCKET, env.endpoint))
    creds = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)

    def lists():
        return env.stats()["requests"].get("ListObjectsV2", 0)

    def walk():
        n = 0
        for _, _, names in os.walk(os.path.join(mp, "data")):
            n += len(names)
        return n

    def mount_and_walk():
        drop_caches()
        before, t0 = lists(), time.time()
        subprocess.run([LAKECACHE, "mount", "--config", config, mp, "--cache-dir", cache], check=True, env=creds,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mounted = time.time()
        n = walk()
        return {"seconds": time.time() - t0, "mount_seconds": mounted - t0, "walk_seconds": time.time() - mounted,
                "lists": lists() - before, "files": n}

    def unmount():
        subprocess.run([LAKECACHE, "unmount", mp], capture_output=True)
    try:
        r["cold"] = mount_and_walk()
        # The whole listing is saved in the background after the mount; wait for it before remounting.
        deadline = time.time() + 300
        while not any(n.endswith(".listing") for n in (os.listdir(os.path.join(cache, "listings")) if os.path.isdir(os.path.join(cache, "listings")) else [])):
            if time.time() > deadline:
                raise RuntimeError("no listing snapshot after 300 s")
            time.sleep(0.2)
        unmount()
        r["snapshot"] = mount_and_walk()
        # 1% of the objects change in the bucket; one sync finds them.
        s3 = env.s3()
        changed = list(range(0, sz.link_objects, 100))
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda i: s3.put_object(Bucket=BUCKET, Key="link/d%03d/o%06d" % (i % 200, i), Body=b"changed!"), changed))
        before = env.stats()["requests"]
        t0 = time.time()
        out = subprocess.run([LAKECACHE, "sync", "--json", os.path.join(mp, "data")], check=True, capture_output=True, text=True, env=creds).stdout
        after = env.stats()["requests"]
        report = json.loads(out.strip().splitlines()[-1])
        r["sync"] = {"seconds": time.time() - t0, "lists": after.get("ListObjectsV2", 0) - before.get("ListObjectsV2", 0),
                     "heads": after.get("HeadObject", 0) - before.get("HeadObject", 0), "changed": report.get("changed"),
                     "unchanged": report.get("unchanged"), "expected_changed": len(changed)}
    except Exception as e:
        r["error"] = str(e)
        log("link workloads failed: %s" % e)
    finally:
        unmount()


def device_write(directory, total=GiB, streams=2):
    """The cache directory's device as the disk tier uses it: `total` bytes of 4 MiB O_DIRECT writes to new
    files, `streams` at a time (the disk tier's threads). A warmup ends only once its blocks are written,
    so this bounds it as raw S3 does."""
    drop_caches()
    t0 = time.time()
    procs = [subprocess.Popen(["dd", "if=/dev/zero", "of=%s/device-write.%d" % (directory, i), "bs=4M", "count=%d" % (total // streams // (4 * MiB)),
                               "oflag=direct"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(streams)]
    ok = all(p.wait() == 0 for p in procs)
    dt = time.time() - t0
    for i in range(streams):
        try:
            os.unlink("%s/device-write.%d" % (directory, i))
        except OSError:
            pass
    return {"mb_per_s": total / dt / 1e6, "seconds": dt} if ok else {"error": "dd oflag=direct failed in %s" % directory}


def prime_store(env, key):
    """Reads the bench store's copy of `key` into the page cache after a drop. The store shares this machine's
    disk with the cache directory, so from a dropped page cache it reads the object from the same disk that a
    warmup writes it to, which a remote store never does; a raw GET writes nothing, so it is unaffected
    (0.82 s against 0.81 s for 1 GiB in three pairs)."""
    with open(object_record(os.path.join(env.work, "store", BUCKET, "objects"), key) + ".json") as f:
        for seg, _ in json.load(f)["segments"]:
            with open(seg, "rb") as g:
                while g.read(8 * MiB):
                    pass


def control_status(socket_path):
    """`status` asked on a mount's control socket directly (one line in, the JSON out; `status` names the
    socket), so that a poll costs no process start beside the work it watches."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(socket_path)
        c.sendall(b"status\n")
        out = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            out += chunk
    return json.loads(out)


def run_warmup(env, sys_, sz, results):
    """Warmup throughput (the small files and one large object), the time from an ObjectCreated event to the
    object being cached, and a cold epoch while a warmup of other data runs."""
    log("== lakecache: warmup, events, an epoch beside a warmup")
    r = results.setdefault("warmup", {})
    creds = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)

    def warm(path, threads, key=None):
        drop_caches()
        if key:
            prime_store(env, key)
        t0 = time.time()
        out = subprocess.run([LAKECACHE, "warmup", "--threads", str(threads), "--json", path], capture_output=True, text=True, env=creds)
        dt = time.time() - t0
        if out.returncode != 0:
            return {"error": (out.stderr or out.stdout).strip()[-300:]}
        last = json.loads(out.stdout.strip().splitlines()[-1])
        return {"seconds": dt, "files": last.get("files"), "bytes": last.get("bytes"),
                "files_per_s": (last.get("files") or 0) / dt, "mb_per_s": (last.get("bytes") or 0) / dt / 1e6, "threads": threads}
    token_file = os.path.join(env.work, "events.token")
    with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("bench-events-token-%s\n" % os.urandom(8).hex())
    token = open(token_file).read().strip()
    try:
        sys_.extra = []
        sys_.fresh()
        r["small"] = warm(sys_.path("small"), 8)
        sys_.fresh()
        r["big"] = warm(sys_.path("big/a.bin"), 16, key="big/a.bin")
        r["disk_write"] = device_write(sys_.cache, total=sz.big)
        # An ObjectCreated event for a 1 GiB object the mount has not seen, on a link that preloads.
        sys_.extra = ["--events-address", "127.0.0.1:0", "--events-token-file", token_file, "--on-create", "preload"]
        sys_.fresh()
        drop_caches()
        prime_store(env, "big/b.bin")
        status = json.loads(subprocess.run([LAKECACHE, "status", "--json", sys_.mountpoint], capture_output=True, text=True, check=True).stdout)
        address = status["events"]["address"]
        body = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "eventSource": "aws:s3",
                                        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "big/b.bin", "size": sz.big, "sequencer": "01"}}}]}).encode()
        t0 = time.time()
        req = urllib.request.Request("http://%s/" % address, data=body, method="POST", headers={"Authorization": "Bearer " + token})
        urllib.request.urlopen(req, timeout=30).read()
        counters = {}
        while time.time() - t0 < 600:
            counters = control_status(status["control_socket"])["events"]["counters"]
            if counters.get("preloaded", 0) + counters.get("preload_failed", 0):
                break
            time.sleep(0.02)
        r["event_to_cached"] = {"seconds": time.time() - t0, "bytes": sz.big, "preloaded": counters.get("preloaded", 0)}
        # A cold epoch of the small files alone, then while a warmup of both large objects runs, in three
        # alternating pairs on fresh mounts: one pair on this shared machine moves by more than the bound.
        sys_.extra = []
        pairs = []
        for k in range(1 if sz.quick else 3):
            sys_.fresh()
            drop_caches()
            alone = small_epoch(sys_.mountpoint, seed=1)
            sys_.fresh()
            drop_caches()
            job = subprocess.run([LAKECACHE, "warmup", "--background", "--threads", "8", sys_.path("big")], capture_output=True, text=True, env=creds)
            beside = small_epoch(sys_.mountpoint, seed=1)
            subprocess.run([LAKECACHE, "jobs", "cancel", job.stdout.strip()], capture_output=True)
            pairs.append({"alone_files_per_s": alone["files_per_s"], "beside_files_per_s": beside["files_per_s"]})
        r["epoch_pairs"] = pairs
        r["epoch_during_warmup"] = {"files_per_s": statistics.median(p["beside_files_per_s"] for p in pairs)}
    except Exception as e:
        r["error"] = str(e)
        log("warmup workloads failed: %s" % e)
    finally:
        sys_.extra = []
        sys_.unmount()


def run_raw(env, sz, results):
    log("== raw S3 (lakecache's client, same concurrency)")
    r = results.setdefault("raw-s3", {})

    def measure(key, cmd, convert):
        # From a dropped page cache, as every cold row of the filesystems starts: else the store may serve
        # these GETs from memory and theirs from the disk, and the limit is not one they could reach.
        drop_caches()
        # One failed tool run costs its row, not the whole benchmark.
        try:
            r[key] = convert(run_json(cmd))
        except SystemExit as e:
            r[key] = {"error": str(e)}

    measure("small_cold", [S3BENCH, "small-gets", "--endpoint", env.endpoint, "--bucket", BUCKET, "--prefix", "small/", "--concurrency", "8"],
            lambda j: {"files_per_s": j["gets_per_s"], "seconds": j["seconds"]})
    # The same GETs at the concurrency lakecache's directory read-ahead uses (32 in flight).
    measure("small_cold_32", [S3BENCH, "small-gets", "--endpoint", env.endpoint, "--bucket", BUCKET, "--prefix", "small/", "--concurrency", "32"],
            lambda j: {"files_per_s": j["gets_per_s"], "seconds": j["seconds"]})
    measure("seq_cold", [S3BENCH, "ranged-read", "--endpoint", env.endpoint, "--bucket", BUCKET, "--key", "big/a.bin", "--concurrency", "16", "--part-size", str(8 * MiB)],
            lambda j: {"mb_per_s": j["mb_per_s"], "seconds": j["seconds"]})
    measure("checkpoint", [S3BENCH, "put", "--endpoint", env.endpoint, "--bucket", BUCKET, "--key", "ckpt/raw/model.bin", "--file",
                           os.path.join(env.work, "checkpoint.bin"), "--concurrency", "8", "--part-size", str(16 * MiB)],
            lambda j: {"close_seconds": None, "durable_seconds": j["seconds"], "bytes": j["bytes"]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data sets: a 3-minute smoke run")
    ap.add_argument("--large", action="store_true", help="also write a 4 GiB checkpoint")
    ap.add_argument("--profile", default="s3-like", choices=["s3-like", "unshaped"])
    ap.add_argument("--systems", default="lakecache,s3fs,rclone,local,raw-s3")
    ap.add_argument("--output", default=os.path.join(ROOT, "bench-results/results.json"))
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs/benchmarks.md"), help="page to regenerate ('' to skip)")
    ap.add_argument("--check", action="store_true", help="exit non-zero unless every system produced its read results (smoke test)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (mounts and dropping the page cache need it)")
    wanted = args.systems.split(",")
    sz = Sizes(args.quick, args.large)
    env = Env(args)

    def on_signal(sig, frame):
        env.cleanup()
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    results = {}
    started = time.time()
    try:
        if not args.quick:  # the smoke variant does not judge its numbers
            log("touching %.1f GiB of free memory once (see prefault_memory)" % (prefault_memory() / 2 ** 30))
        local = generate(env, sz)
        env.start_store()
        log("bench store on %s, profile %s, work dir %s" % (env.endpoint, args.profile, env.work))
        systems = {"lakecache": LakeCache(env), "s3fs": S3FS(env), "rclone": Rclone(env), "local": Local(env, local)}
        for name in wanted:
            if name == "raw-s3":
                run_raw(env, sz, results)
            elif name in systems:
                try:
                    run_system(env, systems[name], sz, results)
                except Exception as e:
                    log("%s failed: %s" % (name, e))
                    results.setdefault(name, {})["error"] = str(e)
                    systems[name].unmount()
    finally:
        env.cleanup()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
            "profile": args.profile, "quick": args.quick, "duration_s": round(time.time() - started, 1),
            "sizes": vars(sz), "options": {"lakecache": LakeCache.options, "s3fs": S3FS.options, "rclone": Rclone.options}}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    log("results in %s (%.0f s)" % (args.output, time.time() - started))
    if args.docs:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import report
        report.write(meta, results, args.docs)
        log("wrote %s" % args.docs)
    if args.check:
        needed = ["small_cold", "small_warm", "ls_cold", "seq_cold", "seq_warm", "concurrent_cold", "random_warm"]
        bad = ["%s: %s" % (n, results.get(n, {}).get("error", "missing " + ",".join(k for k in needed if k not in results.get(n, {}))))
               for n in wanted if n != "raw-s3" and ("error" in results.get(n, {}) or any(k not in results.get(n, {}) for k in needed))]
        if bad:
            raise SystemExit("bench: smoke check failed: " + "; ".join(bad))
        log("smoke check passed: %s" % ", ".join(wanted))


if __name__ == "__main__":
    main()
