# Entry points for a fresh Debian 12 machine (root, or a user with sudo):
#   make demo   install what is missing, build, run the main job
#   make test   install, build, run every test (C++ and Python interop)
#   make bench  streaming benchmarks, C++ next to the Python baseline
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build demo test bench clean install

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

install: build
	cmake --install $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
