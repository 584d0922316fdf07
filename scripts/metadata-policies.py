#!/usr/bin/env python3
"""Cold `ls -l` of a 10,000-entry directory under each metadata policy, side by side, on the bench store.

Two directories of 10,000 objects of 100 bytes: `plain/`, written by another tool (objects without POSIX
metadata, as the bench's dir10k), and `summarised/`, the same files copied in through a lakecache mount
under `--metadata summary` (so it has a summary object). Each round mounts with a fresh cache directory
and times os.scandir + lstat of every entry (what `ls -l` does), for every (policy, directory) pair, in
alternating order, and counts the bench store's requests for each.

Usage: scripts/metadata-policies.py [--rounds 3] [--entries 10000] [--profile s3-like]
Prints a Markdown table (median seconds, spread, requests per listing).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAKECACHE = os.environ.get("LAKECACHE", os.path.join(ROOT, ".build/release/lakecache"))
BUCKET = "meta"
KEY, SECRET = "benchkey", "benchsecret"
ENV = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)


def log(msg):
    print("metadata-policies: " + msg, file=sys.stderr, flush=True)


class Store:
    def __init__(self, work, profile):
        self.work = work
        port_file = os.path.join(work, "store.port")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools/benchstore/benchstore.py"), "--root", os.path.join(work, "store"),
             "--port-file", port_file, "--profile", profile, "--bucket", BUCKET],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "store.log"), "w"), start_new_session=True)
        for _ in range(400):
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.endpoint = "http://127.0.0.1:%d" % int(open(port_file).read())
                return
            time.sleep(0.05)
        raise SystemExit("the bench store did not start; see %s/store.log" % work)

    def requests(self):
        with urllib.request.urlopen(self.endpoint + "/_bench/stats") as r:
            return dict(json.load(r).get("buckets", {}).get(BUCKET, {}).get("requests", {}))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


class Mount:
    def __init__(self, store, work, policy):
        self.mountpoint = tempfile.mkdtemp(dir=work, prefix="mnt-")
        self.cache = tempfile.mkdtemp(dir=work, prefix="cache-")
        subprocess.run([LAKECACHE, "mount", "s3://" + BUCKET, self.mountpoint, "--endpoint", store.endpoint,
                        "--cache-dir", self.cache, "--metadata", policy], check=True, env=ENV)

    def unmount(self):
        subprocess.run([LAKECACHE, "unmount", self.mountpoint], check=True, env=ENV)
        shutil.rmtree(self.cache, ignore_errors=True)


def ls_l(path):
    t0 = time.time()
    n = 0
    for e in os.scandir(path):
        os.lstat(e.path)
        n += 1
    return time.time() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--profile", default="s3-like")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lakecache-metapol-")
    store = None
    try:
        log("seeding %d plain objects" % args.entries)
        objdir = os.path.join(work, "store", BUCKET, "objects")
        os.makedirs(objdir)
        os.makedirs(os.path.join(work, "store", BUCKET, "uploads"))
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from run import seed_object
        local = os.path.join(work, "local")
        os.makedirs(local)
        for i in range(args.entries):
            seed_object(objdir, "plain/e%05d" % i, data=b"x" * 100)
            with open(os.path.join(local, "e%05d" % i), "wb") as f:
                f.write(b"x" * 100)
        store = Store(work, args.profile)
        log("copying them in through a summary mount")
        m = Mount(store, work, "summary")
        t0 = time.time()
        subprocess.run(["cp", "-a", local, os.path.join(m.mountpoint, "summarised")], check=True)
        subprocess.run([LAKECACHE, "flush", os.path.join(m.mountpoint, "summarised")], check=True, env=ENV, stdout=subprocess.DEVNULL)
        m.unmount()
        log("written and flushed in %.1f s" % (time.time() - t0))
        cases = [(p, d) for d in ("plain", "summarised") for p in ("listing", "exact", "summary")]
        results = {c: [] for c in cases}
        counts = {}
        for r in range(args.rounds):
            for c in (cases if r % 2 == 0 else list(reversed(cases))):
                policy, directory = c
                m = Mount(store, work, policy)
                try:
                    before = store.requests()
                    seconds, n = ls_l(os.path.join(m.mountpoint, directory))
                    after = store.requests()
                finally:
                    m.unmount()
                assert n == args.entries, (c, n)
                results[c].append(seconds)
                counts[c] = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
                log("round %d %s on %s: %.2f s %s" % (r + 1, policy, directory, seconds, counts[c]))
        print("| directory | policy | cold `ls -l` (median of %d) | spread | requests |" % args.rounds)
        print("|---|---|---:|---:|---|")
        for c in cases:
            s = sorted(results[c])
            req = ", ".join("%s %d" % (k, v) for k, v in sorted(counts[c].items()))
            print("| %s | %s | %.2f s | %.2f-%.2f | %s |" % (c[1], c[0], s[len(s) // 2], s[0], s[-1], req))
    finally:
        if store:
            store.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
