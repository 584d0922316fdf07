#!/usr/bin/env python3
"""Measures lakecache's daemon memory while walking a large tree (find + stat of every entry).

Seeds the bench store's on-disk format directly (empty objects, DIRS x PER_DIR keys), mounts lakecache,
walks a small tree of its own (2 x PER_DIR) to start the daemon's worker threads, takes the baseline, walks
the tree twice with lstat on every entry, and samples the daemon's RSS. Prints one JSON line: the peak
RSS gained per entry (the figure the target is on), and the live heap gained per entry after the walk, which
does not move with the allocator's fragmentation and so compares two builds to the byte.
Usage: scripts/walk-memory.py [--dirs 200] [--per-dir 1000]   (root; needs a build: make build)
"""
import argparse, hashlib, json, os, subprocess, sys, tempfile, time, shutil, signal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRA = os.environ.get("WALK_EXTRA", "").split()
BIN = os.environ.get("LAKECACHE_BUILD_DIR", os.path.join(ROOT, ".build/release")) + "/lakecache"


def thread_names(pid):
    names = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n = f.read().strip()
        except OSError:
            continue
        names[n] = names.get(n, 0) + 1
    return names


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirs", type=int, default=200)
    ap.add_argument("--per-dir", type=int, default=1000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lakecache-walk-", dir="/var/tmp")
    objdir = os.path.join(work, "store", "walk", "objects")
    os.makedirs(objdir)
    os.makedirs(os.path.join(work, "store", "walk", "uploads"))
    seg = os.path.join(objdir, "empty.seg")
    open(seg, "w").close()

    def seed(root, dirs):
        """Empty objects ROOT/dNNNN/file-NNNNNN.bin, PER_DIR a directory; returns how many."""
        for d in range(dirs):
            for i in range(a.per_dir):
                key = "%s/d%04d/file-%06d.bin" % (root, d, i)
                with open(os.path.join(objdir, hashlib.sha256(key.encode()).hexdigest() + ".json"), "w") as f:
                    json.dump({"key": key, "size": 0, "etag": "d41d8cd98f00b204e9800998ecf8427e", "mtime": 1.7e9, "metadata": {},
                               "content_type": None, "segments": [[seg, 0]]}, f)
        return dirs * a.per_dir
    seed("warm", 2)  # walked before the baseline is taken (see below)
    n = seed("tree", a.dirs)
    store = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools/benchstore/benchstore.py"), "--root", os.path.join(work, "store"),
                              "--port-file", os.path.join(work, "port")], stderr=subprocess.DEVNULL, start_new_session=True)
    mp = os.path.join(work, "mnt")
    os.makedirs(mp)
    try:
        while not os.path.exists(os.path.join(work, "port")):
            time.sleep(0.1)
        port = open(os.path.join(work, "port")).read()
        env = dict(os.environ, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
        subprocess.run([BIN, "mount", "s3://walk", mp, "--endpoint", "http://127.0.0.1:" + port, "--cache-dir", os.path.join(work, "cache")] + EXTRA, check=True, env=env)
        status = lambda: json.loads(subprocess.run([BIN, "status", "--json", mp], capture_output=True, text=True).stdout)
        pid = status()["pid"]
        # The memory tier commits its pages in the background after mount: measure from when that is done,
        # so the figure is the walk's own.
        last = -1
        while True:
            done = status()["cache"]["memory"].get("prefaulted_bytes", 0)
            if done == last:
                break
            last = done
            time.sleep(1)

        def walk(root):
            nonlocal peak, seen
            for d, _, files in os.walk(root):
                for name in files:
                    os.lstat(os.path.join(d, name))
                    seen += 1
                    if seen % 20000 == 0:
                        peak = max(peak, rss(pid))
            peak = max(peak, rss(pid))
        # A walk starts worker threads in the daemon (Swift concurrency's dispatch workers, 28 to 41 on a
        # walk of 2026-12-03), each with its own malloc arena and stack: a fixed cost, which had been divided
        # among the entries. A walk of a small tree of its own starts some of them before the baseline; the
        # threads the measured walk still starts are printed.
        peak = seen = 0
        walk(os.path.join(mp, "warm"))
        walk(os.path.join(mp, "warm"))
        base = rss(pid)
        names_before = thread_names(pid)
        peak = base
        heap_base = status().get("process", {}).get("heap_bytes", 0)
        seen = 0
        t0 = time.time()
        for _ in range(2):
            walk(os.path.join(mp, "tree"))
        status = status()
        names_after = thread_names(pid)
        heap = status.get("process", {}).get("heap_bytes", 0) - heap_base
        print(json.dumps({"heap_per_entry_bytes": round(heap / n, 1), "entries": n, "walked": seen, "seconds": round(time.time() - t0, 1), "rss_baseline": base,
                          "peak_rss": peak, "per_entry_bytes": round((peak - base) / n, 1),
                          "threads_before": sum(names_before.values()), "threads_after": sum(names_after.values()),
                          "new_threads": {k: v - names_before.get(k, 0) for k, v in names_after.items() if v != names_before.get(k, 0)}, "inodes_held": status["namespace"]["inodes"], "background_heads": status["namespace"].get("background_heads"), "cached_listing_entries": status["namespace"]["cached_listing_entries"]}))
    finally:
        subprocess.run([BIN, "unmount", mp], capture_output=True)
        os.killpg(store.pid, signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
