#!/usr/bin/env python3
"""lakecache in five minutes: `make demo` and `make demo-stop`.

start: starts a local S3 server (the bench object store, shaped like remote storage) unless LAKE_ENDPOINT
       names one, seeds a sample dataset, mounts a namespace of three links at /mnt/lake (or $LAKE_MOUNT):
       datasets (read-only, listing kept indefinitely), models (read-only) and checkpoints (async close),
       reads the dataset for two shuffled epochs, writes a checkpoint, flushes it, shows an outside change
       arriving with `lakecache sync`, warms the model as a scheduler would (`lakecache warmup`), publishes a
       new model version whose bucket notification makes the mount preload it (the events endpoint), shows
       links and status, and leaves the mount up.
stop:  unmounts, stops the server it started and removes the demo's cache and data.

Environment: LAKE_MOUNT (mount point), LAKE_DEMO_DIR (state, cache and server data; default
/var/tmp/lakecache-demo), LAKE_ENDPOINT + LAKE_BUCKET (use an existing S3 endpoint instead of the embedded
server; objects go under the prefix lakecache-demo/), LAKECACHE_BUILD_DIR (where the binary is).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAKECACHE = os.path.join(os.environ.get("LAKECACHE_BUILD_DIR", os.path.join(ROOT, ".build/release")), "lakecache")
STATE_DIR = os.environ.get("LAKE_DEMO_DIR", "/var/tmp/lakecache-demo")
STATE = os.path.join(STATE_DIR, "state.json")
MOUNT = os.environ.get("LAKE_MOUNT", "/mnt/lake")
KiB, MiB = 1 << 10, 1 << 20
# The embedded server does not check signatures; these only make requests well formed.
DEMO_KEYS = {"AWS_ACCESS_KEY_ID": "lakecache-demo", "AWS_SECRET_ACCESS_KEY": "lakecache-demo"}

# The sample dataset: "images" in class directories, a few shards and a model, about 200 MiB in all.
IMAGES, CLASSES = 1200, 12
SHARDS, SHARD_SIZE = 4, 16 * MiB
MODEL_SIZE = 64 * MiB
CHECKPOINT_SIZE = 256 * MiB


def say(label, text=""):
    print("  %-16s %s" % (label, text), flush=True)


def fail(msg):
    print("demo: " + msg, file=sys.stderr, flush=True)
    raise SystemExit(1)


def human(n):
    return "%.0f MiB" % (n / MiB) if n >= MiB else "%.0f KiB" % (n / KiB)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def lakecache(*args, check=True, **kw):
    return subprocess.run([LAKECACHE] + list(args), check=check, env=dict(os.environ, **credentials()), **kw)


def credentials():
    return {} if os.environ.get("LAKE_ENDPOINT") else DEMO_KEYS


def load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------- server

def start_server():
    """Starts the bench store (profile s3-like) detached, so it outlives this script; returns its endpoint."""
    port_file = os.path.join(STATE_DIR, "server.port")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools/benchstore/benchstore.py"), "--root", os.path.join(STATE_DIR, "server"),
         "--port-file", port_file, "--profile", "s3-like", "--bucket", "lake"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(STATE_DIR, "server.log"), "w"), start_new_session=True)
    for _ in range(200):
        if os.path.exists(port_file):
            return proc.pid, "http://127.0.0.1:%d" % int(open(port_file).read())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    fail("the local S3 server did not start; see %s/server.log" % STATE_DIR)


def s3_client(endpoint):
    import boto3
    from botocore.config import Config
    keys = credentials()
    return boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY"),
                        config=Config(max_pool_connections=16))


def seed(s3, bucket, prefix):
    rng = random.Random(7)
    objects = []
    for i in range(IMAGES):
        objects.append(("%sdatasets/train/class%02d/img%05d.jpg" % (prefix, i % CLASSES, i), rng.randint(8, 56) * KiB))
    for i in range(SHARDS):
        objects.append(("%sdatasets/shards/train-%05d.tar" % (prefix, i), SHARD_SIZE))
    objects.append(("%sdatasets/partial-upload.tmp" % prefix, 1 * KiB))
    objects.append(("%smodels/base.safetensors" % prefix, MODEL_SIZE))
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda o: s3.put_object(Bucket=bucket, Key=o[0], Body=os.urandom(o[1])), objects))
    return sum(1 for o in objects if "/train/" in "/" + o[0]), sum(o[1] for o in objects)


# ------------------------------------------------------------------------------------------- workload

def get_requests():
    """GETs the mount has sent so far, from `lakecache status --json`."""
    out = lakecache("status", "--json", MOUNT, capture_output=True, text=True).stdout
    return json.loads(out).get("backend", {}).get("requests", {}).get("GetObject", 0)


def timed_load(path):
    """Reads a file as a model loader would; the seconds it took and the GETs the store served meanwhile."""
    gets_before = get_requests()
    t0 = time.time()
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    return time.time() - t0, get_requests() - gets_before


def post_event(address, token, body):
    """POSTs one notification to the mount's events endpoint; its answer, as the store would see it."""
    import urllib.request
    req = urllib.request.Request("http://%s/" % address, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return "HTTP %d %s" % (r.status, r.read().decode())


def drop_page_cache():
    """Makes epoch 2 come from lakecache's cache rather than the kernel's page cache (root only)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def epoch(root, seed):
    t0 = time.time()
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, n) for n in names]
    random.Random(seed).shuffle(files)

    def read(path):
        with open(path, "rb") as f:
            return len(f.read())
    with ThreadPoolExecutor(8) as ex:
        total = sum(ex.map(read, files))
    return len(files), total, time.time() - t0


def write_checkpoint(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chunk = os.urandom(8 * MiB)
    t0 = time.time()
    with open(path, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return time.time() - t0


# ------------------------------------------------------------------------------------------- commands

def start():
    if not os.path.exists(LAKECACHE):
        fail("%s is missing; run `make demo` (it builds the release binary first)" % LAKECACHE)
    if load_state():
        stop(quiet=True)
    if is_mounted(MOUNT):
        fail("%s is already mounted by something else; unmount it or set LAKE_MOUNT to another directory" % MOUNT)
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    created_mount = not os.path.exists(MOUNT)
    try:
        os.makedirs(MOUNT, exist_ok=True)
    except OSError as e:
        fail("cannot create the mount point %s (%s); run as root or set LAKE_MOUNT to a directory you own" % (MOUNT, e.strerror))
    if os.listdir(MOUNT):
        fail("the mount point %s is not empty; empty it or set LAKE_MOUNT to another directory" % MOUNT)

    print("lakecache demo", flush=True)
    state = {"mount": MOUNT, "cache": os.path.join(STATE_DIR, "cache"), "created_mount": created_mount}
    endpoint, bucket, prefix = os.environ.get("LAKE_ENDPOINT"), os.environ.get("LAKE_BUCKET"), ""
    if endpoint:
        if not bucket:
            fail("LAKE_ENDPOINT is set but LAKE_BUCKET is not; name the bucket to use")
        prefix = "lakecache-demo/"
        say("S3 server", "%s (from LAKE_ENDPOINT), bucket %s, prefix %s" % (endpoint, bucket, prefix))
    else:
        state["server_pid"], endpoint = start_server()
        bucket = "lake"
        say("S3 server", "local bench store on %s, shaped like remote storage" % endpoint)
        say("", "(15 ms to first byte, 100 MB/s per connection)")
    state.update(endpoint=endpoint, bucket=bucket, prefix=prefix)
    with open(STATE, "w") as f:
        json.dump(state, f)

    t0 = time.time()
    images, total = seed(s3_client(endpoint), bucket, prefix)
    say("dataset", "{:,} images, %d shards of %s, a %s model: %s, seeded in %.1f s".format(images)
        % (SHARDS, human(SHARD_SIZE), human(MODEL_SIZE), human(total), time.time() - t0))

    # One namespace of three links, each with the policy its data needs (docs/configuration.md).
    config = os.path.join(STATE_DIR, "lake.yaml")
    # The events endpoint's token: a file only its owner can read.
    token = os.urandom(16).hex()
    token_file = os.path.join(STATE_DIR, "events.token")
    with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(token + "\n")
    base = "s3://%s/%s" % (bucket, prefix)
    with open(config, "w") as f:
        f.write("""# make demo's namespace: one mount, three links, each with its own policy
cache-dir: %(cache)s
cache-size: 4G
memory-cache: 512M
close-durability: device          # an async close() returns with the bytes on the device (kernel: in the page cache)
endpoint: %(endpoint)s
events-address: 127.0.0.1:0       # the bucket's notifications arrive here (port 0: any free port)
events-token-file: %(token)s
metrics-address: 127.0.0.1:0      # Prometheus metrics at /metrics (the same address: one server for both)
links:
  - path: datasets            # an immutable dataset: listed once, the listing kept in the cache dir
    url: %(base)sdatasets
    read-only: true
    metadata-ttl: indefinite
    metadata: listing
    exclude: ["*.tmp"]
  - path: models              # a new model announced by the store is cached before anyone loads it
    url: %(base)smodels
    read-only: true
    on-create: preload
  - path: checkpoints         # written with async close: close() returns before the upload
    url: %(base)scheckpoints
    write-mode: async
""" % {"cache": state["cache"], "endpoint": endpoint, "base": base, "token": token_file})
    lakecache("mount", "--config", config, MOUNT)
    say("mount", "%s: three links from %s (cache %s)" % (MOUNT, config, state["cache"]))
    print("  lakecache links %s" % MOUNT, flush=True)
    out = lakecache("links", MOUNT, capture_output=True, text=True).stdout
    print("".join("    " + line + "\n" for line in out.splitlines()), end="")

    data = os.path.join(MOUNT, "datasets")
    n, size, t1 = epoch(data, 1)
    say("epoch 1 (cold)", "{:>6,} files  {}  {:6.2f} s  {:7.1f} MB/s".format(n, human(size), t1, size / t1 / 1e6))
    dropped = drop_page_cache()
    n, size, t2 = epoch(data, 2)
    say("epoch 2 (warm)", "{:>6,} files  {}  {:6.2f} s  {:7.1f} MB/s  {:.1f}× faster{}".format(
        n, human(size), t2, size / t2 / 1e6, t1 / t2, "" if dropped else " (page cache not dropped: not root)"))

    ckpt = os.path.join(MOUNT, "checkpoints/step-000100/model.safetensors")
    t_close = write_checkpoint(ckpt, CHECKPOINT_SIZE)
    say("checkpoint", "%s written, close() returned in %.2f s (%.0f MB/s) with the bytes on the device; the upload goes on"
        % (human(CHECKPOINT_SIZE), t_close, CHECKPOINT_SIZE / t_close / 1e6))
    print("  lakecache flush %s" % os.path.dirname(ckpt), flush=True)
    t0 = time.time()
    lakecache("flush", os.path.dirname(ckpt), "--timeout", "600")
    say("durable", "everything under %s is in the bucket (%.2f s after close())" % (os.path.dirname(ckpt), time.time() - t0))
    # A scheduler warms the model before the inference job that loads it starts.
    models = os.path.join(MOUNT, "models")
    print("  lakecache warmup --check %s" % models, flush=True)
    out = lakecache("warmup", "--check", models, check=False, capture_output=True, text=True).stdout.strip()
    print("    " + out.splitlines()[0], flush=True)
    print("  lakecache warmup %s      (what a scheduler runs before the job)" % models, flush=True)
    out = lakecache("warmup", models, capture_output=True, text=True).stdout.strip()
    print("    " + out, flush=True)
    drop_page_cache()
    t_load, gets = timed_load(os.path.join(models, "base.safetensors"))
    say("model load", "%s in %.2f s (%.0f MB/s), %d GETs: it came from the disk tier"
        % (human(MODEL_SIZE), t_load, MODEL_SIZE / t_load / 1e6, gets))
    # The model store publishes a new version; its notification (here in the AWS S3 format, as S3, MinIO
    # and Ceph send them) reaches the mount, which preloads the object before anyone asks.
    new_model = "%smodels/base-v2.safetensors" % prefix
    s3_client(endpoint).put_object(Bucket=bucket, Key=new_model, Body=os.urandom(MODEL_SIZE))
    status = json.loads(lakecache("status", "--json", MOUNT, capture_output=True, text=True).stdout)
    address = status["events"]["address"]
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": bucket}, "object": {"key": new_model, "size": MODEL_SIZE, "sequencer": "%016X" % time.time_ns()}}}
    print("  (the store publishes models/base-v2.safetensors and POSTs its event to http://%s/)" % address, flush=True)
    t0 = time.time()
    reply = post_event(address, token, {"Records": [record]})
    counters = {}
    while time.time() - t0 < 120:
        counters = json.loads(lakecache("status", "--json", MOUNT, capture_output=True, text=True).stdout)["events"]["counters"]
        if counters.get("preloaded", 0) + counters.get("preload_failed", 0) >= 1:
            break
        time.sleep(0.1)
    t_event = time.time() - t0
    t_load, gets = timed_load(os.path.join(models, "base-v2.safetensors"))
    say("event", "%s; cached %.2f s after the event (%s), loaded in %.2f s with %d GETs"
        % (reply, t_event, "preloaded" if counters.get("preloaded") else "preload failed", t_load, gets))
    # Another client adds an image; the indefinite listing hides it until a sync.
    s3_client(endpoint).put_object(Bucket=bucket, Key="%sdatasets/train/class00/new-image.jpg" % prefix, Body=os.urandom(20 * KiB))
    print("  (another client uploads datasets/train/class00/new-image.jpg)", flush=True)
    print("  lakecache sync %s" % data, flush=True)
    out = lakecache("sync", data, capture_output=True, text=True).stdout.strip()
    print("    " + out, flush=True)
    # What Prometheus would scrape: a few lines of /metrics.
    metrics_address = json.loads(lakecache("status", "--json", MOUNT, capture_output=True, text=True).stdout)["metrics"]["address"]
    print("  curl http://%s/metrics   (a few of its lines)" % metrics_address, flush=True)
    page = urllib.request.urlopen("http://%s/metrics" % metrics_address, timeout=10).read().decode()
    wanted = ('lakecache_cache_hits_total{tier="memory"}', 'lakecache_backend_requests_total{link="/datasets",operation="GetObject"}',
              'lakecache_uploads_pending{link="/checkpoints"}', 'lakecache_fuse_operation_duration_seconds_count{operation="read"}')
    for line in page.splitlines():
        if line.startswith(wanted):
            print("    " + line, flush=True)
    print("  lakecache status %s" % MOUNT, flush=True)
    out = lakecache("status", MOUNT, capture_output=True, text=True).stdout
    print("".join("    " + line + "\n" for line in out.splitlines()), end="")
    env = "".join("%s=%s " % (k, os.environ[k]) for k in ("LAKE_MOUNT", "LAKE_DEMO_DIR") if k in os.environ)
    print("The mount stays up. Explore: ls %s   Stop: %smake demo-stop" % (MOUNT, env), flush=True)


def stop(quiet=False):
    state = load_state()
    mount = state["mount"] if state else MOUNT
    if is_mounted(mount):
        if lakecache("unmount", mount, check=False, capture_output=True).returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", mount], capture_output=True)
    pid = state.get("server_pid") if state else None
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    if state and state.get("created_mount") and os.path.isdir(mount) and not os.listdir(mount):
        os.rmdir(mount)
    if not quiet:
        print("demo stopped: %s unmounted, local S3 server stopped, demo data removed" % mount if state
              else "demo: nothing to stop (no demo state in %s)" % STATE_DIR)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "start"
    if cmd == "start":
        try:
            start()
        except (Exception, KeyboardInterrupt) as e:
            if load_state():
                stop(quiet=True)
            if isinstance(e, subprocess.CalledProcessError):
                fail("`%s` failed (exit %d); the demo was stopped and cleaned up" % (" ".join(map(str, e.cmd[1:])), e.returncode))
            raise
    elif cmd == "stop":
        stop()
    else:
        fail("usage: demo.py start|stop")
