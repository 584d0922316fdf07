# lakecache: the two setup commands are `make demo` and `make test` (see README.md).
SWIFT ?= swift
PYTHON ?= python3

.PHONY: all deps build build-debug test test-unit bench bench-quick demo demo-stop fuzz soak install uninstall clean

all: build

deps:
	@scripts/install-deps.sh

## build: release binary at .build/release/lakecache
build: deps
	$(SWIFT) build -c release --product lakecache

build-debug: deps
	$(SWIFT) build --build-tests

## test: every test (unit and integration), with moto and the bench object store started and stopped around it
test: build-debug
	$(PYTHON) scripts/with-test-servers.py $(SWIFT) test --skip-build
	@echo "== Kubernetes manifests (deploy/kubernetes, strict schema check)"
	scripts/validate-kubernetes.sh
	@echo "== bench smoke test (bench/run.py --quick on lakecache and local disk)"
	LAKECACHE_BUILD_DIR=$$($(SWIFT) build --show-bin-path) $(PYTHON) bench/run.py --quick --systems lakecache,local --docs '' --output .build/bench-smoke.json --check
	@echo "== demo smoke test (make demo twice in a row, then make demo-stop, on a private mount point)"
	LAKECACHE_BUILD_DIR=$$($(SWIFT) build --show-bin-path) scripts/demo-smoke.sh
	@echo "== soak, 60 s (readers, writers, renamers under 5% injected faults; make soak runs 10 minutes)"
	LAKECACHE_BUILD_DIR=$$($(SWIFT) build --show-bin-path) $(PYTHON) scripts/soak.py --seconds 60 --report .build/soak-60.json --check > .build/soak-60.log || (tail -40 .build/soak-60.log; exit 1)
	@tail -1 .build/soak-60.log

## test-unit: only the tests that need no server
test-unit: build-debug
	$(SWIFT) test --skip-build --skip IntegrationTests

## bench: lakecache vs s3fs, rclone, local disk and raw S3 in one run; writes docs/benchmarks.md
bench: deps
	@EXTRA_APT="s3fs rclone openssl" EXTRA_PIP="matplotlib" scripts/install-deps.sh
	$(SWIFT) build -c release --product lakecache
	$(SWIFT) build -c release --product lakecache-s3bench
	$(PYTHON) bench/run.py $(BENCH_ARGS)

## bench-quick: the 3-minute smoke variant (small data sets)
bench-quick:
	$(MAKE) bench BENCH_ARGS="--quick $(BENCH_ARGS)"

## demo: a local S3 server, a sample dataset, a mount at /mnt/lake ($$LAKE_MOUNT), two epochs and a checkpoint
demo: build
	$(PYTHON) scripts/demo.py start

## demo-stop: unmount the demo, stop its S3 server, remove its data
demo-stop:
	$(PYTHON) scripts/demo.py stop

## soak: SOAK_SECONDS (default 600) of mixed load under injected faults; report in bench-results/soak.json
soak: build
	$(PYTHON) scripts/soak.py --seconds $${SOAK_SECONDS:-600} --report bench-results/soak.json --check

## install: the binary (PREFIX, default /usr/local), the systemd unit and the mount(8) helper for fstab
PREFIX ?= /usr/local
install: build
	install -D -m 755 .build/release/lakecache $(DESTDIR)$(PREFIX)/bin/lakecache
	install -D -m 644 systemd/lakecache@.service $(DESTDIR)/etc/systemd/system/lakecache@.service
	install -D -m 755 scripts/mount.lakecache $(DESTDIR)/sbin/mount.lakecache
	@echo "installed: $(PREFIX)/bin/lakecache, /etc/systemd/system/lakecache@.service, /sbin/mount.lakecache (see docs/operations.md)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lakecache $(DESTDIR)/etc/systemd/system/lakecache@.service $(DESTDIR)/sbin/mount.lakecache

## fuzz: every parser of outside input under libFuzzer + ASan, FUZZ_SECONDS (default 60) each
fuzz: deps
	scripts/fuzz.sh $(FUZZ_TARGETS)

clean:
	rm -rf .build .build-fuzz
