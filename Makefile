# The two commands of the README, plus the build they share.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
# ccache keys objects by paths relative to the checkout, so a clone elsewhere (CI's) reuses them.
export CCACHE_BASEDIR := $(CURDIR)
# The sanitizer build has -g; without this its objects would be keyed by the build directory too.
export CCACHE_NOHASHDIR := 1

.PHONY: all build run test unit bench fuzz soak cluster deps clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run-local

test: build
	@BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) scripts/test

# The pure unit tests alone, in seconds: no Redis, no Postgres, no other binary built. ctest labels:
# unit, integration, serial (run alone), deploy, bench, fuzz (corpus replay).
unit:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target lagoon_unit_tests
	@ctest --test-dir $(BUILD_DIR) -L unit -j $(JOBS) --output-on-failure

# Lagoon beside direct, nginx and Portkey in one run (bench/run.sh); not part of `make test`, which
# runs a 20-second version of it.
bench: build
	@bench/run.sh

# libFuzzer + ASan + UBSan on each target for FUZZ_SECONDS (600) in build-fuzz/ (scripts/fuzz); `make test`
# replays the kept corpus on the ordinary build.
fuzz: deps
	@scripts/fuzz

# SOAK_SECONDS (600) of mixed traffic; fails when RSS or open descriptors keep growing (scripts/soak).
soak: build
	@scripts/soak

# Three instances behind haproxy on one Redis and Postgres, to try (scripts/cluster; CLUSTER_BENCH=1
# measures requests/s with 1 and with 3 instances).
cluster: build
	@scripts/cluster

clean:
	rm -rf $(BUILD_DIR)
