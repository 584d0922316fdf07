#!/usr/bin/env python3
"""Metadata workloads of lakecache under several mount options, side by side, in alternating rounds.

Seeds the bench store (profile s3-like) with `make bench`'s small-file dataset (4,000 × 16 KiB in 40
directories) and its 10,000-entry directory of 100-byte objects, then, for each round and each variant in
turn, mounts lakecache fresh (empty cache) and measures a cold `ls -l` of the big directory and a cold
shuffled epoch over the small files (os.walk, then 8 reader threads), with the requests each made.

Usage: bench/variants.py [--rounds N] [--quick] NAME='OPTIONS' [NAME='OPTIONS' ...]
  e.g. bench/variants.py exact='--metadata exact' listing='--metadata listing'
Prints one JSON document: per variant, per round, the figures and the store's request counts.
"""
import argparse
import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def seed(env, sz):
    objdir = os.path.join(env.work, "store", run.BUCKET, "objects")
    os.makedirs(objdir, exist_ok=True)
    os.makedirs(os.path.join(env.work, "store", run.BUCKET, "uploads"), exist_ok=True)
    rng = run.random.Random(1234)
    for i in range(sz.small_files):
        run.seed_object(objdir, "small/d%02d/f%05d.bin" % (i % sz.small_dirs, i), data=rng.randbytes(sz.small_size))
    for i in range(sz.dir_entries):
        run.seed_object(objdir, "dir10k/e%05d" % i, data=b"x" * 100)


def requests_delta(before, after):
    out = {}
    for k, v in after.get("requests", {}).items():
        d = v - before.get("requests", {}).get(k, 0)
        if d:
            out[k] = d
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", default="s3-like", choices=["s3-like", "unshaped"])
    ap.add_argument("variants", nargs="+", help="NAME='lakecache mount options'")
    args = ap.parse_args()
    variants = [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1] if "=" in v else "")) for v in args.variants]
    sz = run.Sizes(args.quick, False)
    env = run.Env(argparse.Namespace(profile=args.profile))
    results = {name: [] for name, _ in variants}
    try:
        seed(env, sz)
        env.start_store()
        lc = run.LakeCache(env)
        base = list(lc.options)
        for r in range(args.rounds):
            for name, extra in variants:
                lc.options = base + extra
                row = {}
                lc.fresh()
                run.drop_caches()
                before = env.stats()
                row["ls_cold_s"] = round(run.ls_l(lc.mountpoint)["seconds"], 3)
                row["ls_requests"] = requests_delta(before, env.stats())
                lc.fresh()
                run.drop_caches()
                before = env.stats()
                epoch = run.small_epoch(lc.mountpoint, seed=1)
                row["small_cold_files_per_s"] = round(epoch["files_per_s"], 1)
                row["small_requests"] = requests_delta(before, env.stats())
                run.log("round %d %s: %s" % (r + 1, name, json.dumps(row)))
                results[name].append(row)
    finally:
        env.cleanup()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
