# Thin wrapper over CMake.  `make help` lists the targets.
#
# Every target that builds runs scripts/deps.sh first (quick when nothing is
# missing; DEPS=true skips it).  Each variant has its own build directory.

SHELL := /bin/bash
.DEFAULT_GOAL := build

CMAKE ?= cmake
CTEST ?= ctest
DEPS ?= bash scripts/deps.sh
CLANG ?= clang
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TEST_JOBS ?= 2
# Seconds each libFuzzer harness runs in `make fuzz`.
FUZZ_SECONDS ?= 60
# Seconds each soak case runs in `make soak` (`make test` runs them 3 s).
SOAK_SECONDS ?= 60
# Extra arguments for every configure / every ctest run.
CMAKE_ARGS ?=
CTEST_ARGS ?=

BUILD := build
comma := ,

# Optimised with debug info; -DNDEBUG deliberately absent so the library's
# assertions stay.
RELEASE := -DCMAKE_BUILD_TYPE=RelWithDebInfo \
           -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" \
           -DCMAKE_ASM_FLAGS_RELWITHDEBINFO="-g"
DEBUG   := -DCMAKE_BUILD_TYPE=Debug \
           -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
           -DCMAKE_ASM_FLAGS_DEBUG="-g"

# $(call configure_and_build,DIR,CMAKE ARGS)
define configure_and_build
	$(CMAKE) -S . -B $(1) $(2) $(CMAKE_ARGS)
	$(CMAKE) --build $(1) -j $(JOBS)
endef

# $(call run_tests,DIR)
define run_tests
	$(CTEST) --test-dir $(1) --output-on-failure -j $(TEST_JOBS) $(CTEST_ARGS)
endef

.PHONY: all build deps demo test bench asan tsan ucontext clang aarch64 valgrind \
        fuzz soak lint install clean help

all: build

deps:
	@$(DEPS)

build: deps
	$(call configure_and_build,$(BUILD),$(RELEASE))

demo: build
	@test -x $(BUILD)/examples/demo || \
	  { echo "make demo: no $(BUILD)/examples/demo (is there an examples/demo.c?)" >&2; exit 1; }
	./$(BUILD)/examples/demo

test: build
	$(call run_tests,$(BUILD))

# ASan + UBSan, -O1.
asan: deps
	$(call configure_and_build,build-asan,$(DEBUG) -DWEFT_SANITIZE=address$(comma)undefined)
	$(call run_tests,build-asan)

# ThreadSanitizer, the whole suite (the doorbell, cross-thread wake-ups,
# the resolver and watchdog threads, and everything else).
tsan: deps
	$(call configure_and_build,build-tsan,$(DEBUG) -DWEFT_SANITIZE=thread)
	$(call run_tests,build-tsan)

# The portable makecontext/swapcontext backend.
ucontext: deps
	$(call configure_and_build,build-ucontext,$(RELEASE) -DWEFT_CTX=ucontext)
	$(call run_tests,build-ucontext)

clang: deps
	$(call configure_and_build,build-clang,$(RELEASE) -DCMAKE_C_COMPILER=$(CLANG))
	$(call run_tests,build-clang)

# Benchmarks (bench/README.md): optimised build, then bench/run.sh runs every
# shape against the peers, prints the table and writes build-bench/bench.csv
# (BENCH_QUICK=1 make bench: a quick look; BENCH_SCALE, BENCH_RUNS).
bench:
	@$(DEPS)
	$(call configure_and_build,build-bench,-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2" -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF)
	bash bench/run.sh build-bench

# Cross-built for aarch64 (the other assembly context switch), tests run
# under qemu-user.
aarch64:
	@$(DEPS) --aarch64
	bash scripts/test-aarch64.sh --all

# Every test case under valgrind memcheck (own build dir: memcheck needs a
# longer per-case timeout).  Fails on any error or definite leak.
valgrind: deps
	$(call configure_and_build,build-valgrind,$(RELEASE) -DWEFT_TEST_TIMEOUT=600)
	bash scripts/memcheck.sh build-valgrind -j $(TEST_JOBS) $(CTEST_ARGS)

# The libFuzzer harnesses of fuzz/ (clang, ASan+UBSan, own build dir),
# each run for FUZZ_SECONDS; fails on any finding (fuzz/run.sh).
fuzz: deps
	$(call configure_and_build,build-fuzz,$(DEBUG) -DCMAKE_C_COMPILER=$(CLANG) \
	  -DWEFT_SANITIZE=address$(comma)undefined -DWEFT_BUILD_FUZZ=ON \
	  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# The soak cases of tests/test-soak.c (coroutine churn, loopback
# connections, doorbell rings from many threads), SOAK_SECONDS each, on the
# optimised build, each in its own process; fails on any failed case.
soak: build
	WEFT_SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD)/tests/test-soak --fork

# Static analysis: clang-tidy (.clang-tidy) and cppcheck over src/, tools/
# and examples/ (scripts/lint.sh, compile commands from build-lint/); fails
# on any finding.
lint: deps
	bash scripts/lint.sh -j $(JOBS)

# make install PREFIX=/opt/weft   (DESTDIR=... is honoured too)
install: deps
	$(call configure_and_build,$(BUILD),$(RELEASE) -DCMAKE_INSTALL_PREFIX="$(PREFIX)")
	$(CMAKE) --install $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-ucontext build-clang \
	       build-aarch64 build-valgrind build-fuzz build-lint build-bench

help:
	@echo "make [build]   deps, configure and build in build/ (-O2 -g, assertions on)"
	@echo "make demo      build, then run build/examples/demo"
	@echo "make test      build, then run every test case with ctest"
	@echo "make asan      ASan+UBSan build and tests in build-asan/"
	@echo "make tsan      TSan build and tests in build-tsan/"
	@echo "make ucontext  ucontext context-switch backend, tests in build-ucontext/"
	@echo "make clang     clang build and tests in build-clang/"
	@echo "make bench     build and run the benchmarks (bench/README.md)"
	@echo "make aarch64   cross-build for aarch64, tests under qemu (build-aarch64/)"
	@echo "make valgrind  every test case under valgrind memcheck (build-valgrind/)"
	@echo "make fuzz      libFuzzer harnesses, FUZZ_SECONDS (60) each (build-fuzz/)"
	@echo "make soak      the soak tests, SOAK_SECONDS (60) each (build/)"
	@echo "make lint      clang-tidy and cppcheck, zero findings (build-lint/)"
	@echo "make install   install into PREFIX (default /usr/local)"
	@echo "make clean     remove every build directory"
	@echo "Variables: PREFIX JOBS TEST_JOBS CMAKE_ARGS CTEST_ARGS CLANG DEPS FUZZ_SECONDS"
	@echo "           SOAK_SECONDS"
