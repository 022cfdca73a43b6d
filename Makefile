# Entry points for a fresh Debian 12 machine (root, or a user with sudo):
#   make demo   install what is missing, build, run the main job
#   make test   install, build, run every test (C++ and Python interop)
#   make bench  streaming benchmarks, C++ next to the Python baseline
#   make test-sanitize  the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang,
#               Debug at -O1, in build-asan/)
#   make fuzz   every libFuzzer target for FUZZ_SECONDS each (same build-asan/; fuzz/run.sh)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

SANITIZE_DIR ?= build-asan
FUZZ_SECONDS ?= 60
CCACHE := $(shell command -v ccache 2>/dev/null)
# One clang build serves both the sanitized suite and the fuzzers (every target gets ASan + UBSan
# and libFuzzer's coverage hooks), so neither costs a second full build.
SANITIZE_FLAGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DTRACETORCH_BUILD_FUZZ=ON \
  -DTRACETORCH_BUILD_EXAMPLES=OFF $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Leaks are errors; LibTorch's few intentional process-lifetime allocations are suppressed by name.
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/fuzz/ubsan.supp

.PHONY: all deps configure build demo test bench clean install sanitize-build test-sanitize fuzz

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) -DTRACETORCH_BUILD_BENCH=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)
	bash scripts/bench.sh $(BUILD_DIR)

sanitize-build: deps
	cmake -S . -B $(SANITIZE_DIR) $(SANITIZE_FLAGS)
	cmake --build $(SANITIZE_DIR) -j $(JOBS)

test-sanitize: sanitize-build
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) $(SANITIZE_CTEST_ARGS)

fuzz: sanitize-build
	$(SANITIZE_ENV) bash fuzz/run.sh $(SANITIZE_DIR) $(FUZZ_SECONDS)

install: build
	cmake --install $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR)
