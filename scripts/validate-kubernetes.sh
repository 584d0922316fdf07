#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml against the Kubernetes schemas (pip kubernetes-validate, strict: an
# unknown field fails), then proves the check bites: a copy with a misspelt field must fail.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m kubernetes_validate --strict --quiet deploy/kubernetes/*.yaml
bad=$(mktemp --suffix=.yaml)
trap 'rm -f "$bad"' EXIT
sed 's/mountPropagation: Bidirectional/mountPropogation: Bidirectional/' deploy/kubernetes/daemonset.yaml > "$bad"
if $PY -m kubernetes_validate --strict --quiet "$bad" >/dev/null 2>&1; then
  echo "validate-kubernetes: a manifest with a misspelt field passed: the check is not checking" >&2
  exit 1
fi
echo "validate-kubernetes: $(ls deploy/kubernetes/*.yaml | wc -l) manifests valid (strict; kubernetes-validate $($PY -m kubernetes_validate --version), its default Kubernetes schemas)"
