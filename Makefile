# Thin wrapper over CMake. `make test` is the one command that sets up, builds and tests.
BUILD     ?= build
BUILD_SAN ?= build-san
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build test test-sanitize sim-long chaos-long bench fuzz format clean install \
	deb image test-containers

all: build

deps:
	sh deploy/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Installs under CMAKE_INSTALL_PREFIX (/usr unless configured otherwise); DESTDIR is honoured:
#   make install DESTDIR=/tmp/stage
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian package of this build: $(BUILD)/electd_<version>_<arch>.deb (CPack, deploy/packaging/).
deb: build
	cd $(BUILD) && cpack -G DEB
	@ls $(BUILD)/electd_*.deb

# The container images of deploy/docker/Dockerfile, built with podman (deploy/docker/build-image.sh):
# electd:<version> (runtime) and electd:<version>-minimal, sizes printed. Where no debian:12
# image can be pulled, a Debian 12 base is made locally with debootstrap. A constrained host
# may need PODMAN_FLAGS="--runtime runc --cgroup-manager cgroupfs" (docs/getting-started.md).
image:
	sh deploy/install-deps.sh --containers
	sh deploy/docker/build-image.sh

# The tests of tests/containers/ (label `containers`): the image under podman, the pod template
# under `podman play kube`, the .deb under systemd-nspawn. They skip where podman or the image
# is missing, so `make test` on a host without them stays quick.
test-containers: build
	cd $(BUILD) && ctest -L containers --output-on-failure

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: deps
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DELECTD_SANITIZE=ON
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS)

# A long simulator batch: SIM_SCHEDULES=1000000 make sim-long
SIM_SCHEDULES ?= 100000
sim-long: build
	$(BUILD)/tests/sim/raft_sim --schedules $(SIM_SCHEDULES) --random

# A chaos campaign (tests/chaos, docs/reliability.md): CHAOS_MINUTES of faults in rounds of
# 3 minutes, each a fresh cluster (round k uses seed CHAOS_SEED+k), then the campaign's sums.
# As root the members live in network namespaces, otherwise behind the harness's proxy.
#   make chaos-long CHAOS_MINUTES=60 CHAOS_SEED=1000 CHAOS_NODES=5 CHAOS_ARGS="--peer-tls --hooks"
CHAOS_MINUTES ?= 60
CHAOS_SEED    ?= 1000
CHAOS_NODES   ?= 3
CHAOS_ARGS    ?=
chaos-long: build
	$(BUILD)/tests/chaos/chaos --seed $(CHAOS_SEED) --nodes $(CHAOS_NODES) --duration 180 \
		--rounds $$(( ($(CHAOS_MINUTES) + 2) / 3 )) $(CHAOS_ARGS)

# The first command of the README: a 3-node cluster on loopback running the example binlog
# worker, a kill -9 failover and a graceful handover, then a verification (deploy/demo.sh).
# DEMO_SHORT=1 for the short CI variant, DEMO_KEEP=1 to keep its logs.
.PHONY: demo
demo: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target electd binlog_worker
	bash deploy/demo.sh $(BUILD)

bench: build
	$(BUILD)/tests/bench/bench_raft

fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DELECTD_FUZZ=ON -DELECTD_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS)
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-fuzz
