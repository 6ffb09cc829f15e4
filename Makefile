# diat — the two commands a person needs are `make demo` and `make test`; both set up what is missing.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DIAT_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/diat
export DIAT_CACHE
# One target dir per checkout (scripts/target-dir.sh says why): $(DIAT_CACHE)/targets/<folder>-<hash>.
ifeq ($(origin CARGO_TARGET_DIR),undefined)
CARGO_TARGET_DIR := $(shell DIAT_CACHE='$(DIAT_CACHE)' bash scripts/target-dir.sh)
endif
export CARGO_TARGET_DIR
CARGO ?= cargo
# One profile for tests, binaries and benchmarks (torch-sys and polars are compiled once).
PROFILE := --release
DIAT := $(CARGO_TARGET_DIR)/release/diat
DEMO_OUT ?= out/demo

.PHONY: help setup build build-curator demo test lint bench gpu-bundle train-all zoo-real clean

PIPELINES ?= mouth_open mouth_close eyeglasses_remove male_to_female older_to_younger

help:
	@echo "make demo    set up, then run the main job on the embedded default (synthetic faces)"
	@echo "make test    set up, then run the whole test suite"
	@echo "make setup   install the torch 2.11.0 venv and write .cargo/config.toml (idempotent)"
	@echo "make build   release build of the diat binary"
	@echo "make build-curator  the diat binary without libtorch (data, data synth, eval synth, zoo)"
	@echo "make gpu-bundle  copy the release binary into .device/ for a GPU machine (see README)"
	@echo "make train-all   train every paper pipeline in turn (resumable; finished ones are skipped)"
	@echo "make zoo-real TASK=mouth_open VERSION=0.1.0  train, score and publish one real-face zoo model"

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build $(PROFILE) --locked --bin diat

# The main job on the embedded default: synthetic CelebA-format faces -> the paper's curation ->
# a short CPU training of the local mouth_open task -> before/after sheet and synthetic evaluation.
# The curator's build: no torch venv, no libtorch (commands that need it say so).
build-curator:
	$(CARGO) build $(PROFILE) --locked --bin diat --no-default-features

demo: build
	$(DIAT) doctor
	$(DIAT) data synth --out $(DEMO_OUT)/synth --count 3000 --overwrite --sheet $(DEMO_OUT)/synth_sheet.png
	$(DIAT) data prepare $(DEMO_OUT)/synth --out $(DEMO_OUT)/prepared --task mouth_open --size 64 \
	  --input-size 500 --test-size 50 --sheet-size 12
	@# A run of an older demo pipeline cannot be resumed: set it aside and start afresh.
	@if [ -f $(DEMO_OUT)/run/resolved.toml ] && ! $(DIAT) train --pipeline pipelines/demo/mouth_open.toml \
	  --set 'task.data="$(abspath $(DEMO_OUT))/prepared"' --dry-run | cmp -s - $(DEMO_OUT)/run/resolved.toml; then \
	  echo "demo: the pipeline changed since $(DEMO_OUT)/run was trained; moving it to $(DEMO_OUT)/run.old"; \
	  rm -rf $(DEMO_OUT)/run.old; mv $(DEMO_OUT)/run $(DEMO_OUT)/run.old; fi
	$(DIAT) train --pipeline pipelines/demo/mouth_open.toml --run-dir $(DEMO_OUT)/run --resume \
	  --set 'task.data="$(abspath $(DEMO_OUT))/prepared"'
	$(DIAT) eval synth --data $(DEMO_OUT)/synth --attr Mouth_Slightly_Open --direction add --limit 50 \
	  --transform identity --transform counterfactual --model $(DEMO_OUT)/run/final --json $(DEMO_OUT)/eval.json
	cp "$$(ls $(DEMO_OUT)/run/samples/enhance-step-*.png | tail -1)" $(DEMO_OUT)/before_after.png
	@echo "demo: before/after sheet $(DEMO_OUT)/before_after.png, evaluation $(DEMO_OUT)/eval.json, run $(DEMO_OUT)/run"

# The curator's build (no libtorch: `--no-default-features`) runs the tests of what it has first;
# then the default build runs everything (and leaves the full binary in place).
CURATOR_TESTS := --test curator_build --test crate_boundaries --test data_cli --test synth_cli \
  --test synth_ingestion --test zoo_cli

# `cargo fetch` first: the crate-boundary tests run `cargo tree --offline`, which needs every locked
# crate of this platform on disk, also those no build of ours compiles (zip 0.6's `aes`, a fresh
# machine's CI failed on it before the full build had fetched it).
test: setup
	$(CARGO) fetch --locked --target $$(rustc -vV | sed -n 's/^host: //p')
	{ $(CARGO) test $(PROFILE) --locked --no-default-features $(CURATOR_TESTS) --no-fail-fast || light=$$?; \
	  $(CARGO) test $(PROFILE) --locked --workspace --no-fail-fast || full=$$?; \
	  exit $$(( $${light:-0} | $${full:-0} )); } 2>&1 | bash scripts/test-summary.sh

lint: setup
	$(CARGO) clippy $(PROFILE) --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(PROFILE) --no-default-features --all-targets -- -D warnings
	$(CARGO) fmt --all --check
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc $(PROFILE) --workspace --no-deps --locked

# Every paper task on the GPU when present; data from `diat data prepare` under $$DIAT_DATA_DIR/celeba.
train-all: build
	@for p in $(PIPELINES); do \
	  echo "== $$p"; \
	  $(DIAT) train --pipeline pipelines/$$p.toml --resume || exit $$?; \
	done

# One zoo model on real CelebA faces: align, CelebA layout, prepare, train (resumable), eval real,
# publish into zoo/ (scripts/zoo/real-model.sh; PUBLISH=0 stops after the evaluation).
zoo-real: build
	DIAT=$(DIAT) bash scripts/zoo/real-model.sh $(TASK) $(VERSION)

gpu-bundle: build
	rm -rf .device/bin && mkdir -p .device/bin
	strip -o .device/bin/diat $(DIAT)   # debug info makes it ~450 MB; stripped ~50 MB
	cp scripts/diat-gpu .device/bin/diat-gpu
	@du -sh .device
	@echo "carry .device; run .device/bin/diat-gpu <args> (or scripts/bench/gpu-session.sh) on the GPU machine"

clean:
	$(CARGO) clean
