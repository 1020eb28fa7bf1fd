# dlab: the two commands of the README, plus the steps they are made of.
#   make run    install what is missing, build, start dlabd, submit examples/digits
#   make test   install what is missing, build, run every test (unit and end-to-end)
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all deps configure build run stop test unit e2e asan fuzz bench format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); fi

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run-example.sh

stop:
	@scripts/run-example.sh --stop

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

unit: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

e2e: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -L e2e

# Every test again, against a build with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	@if [ ! -f build-asan/build.ninja ]; then \
	  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDLAB_SANITIZE=ON; fi
	@cmake --build build-asan -j $(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# The libFuzzer targets of fuzz/, FUZZ_SECONDS (default 60) each, in their own build-fuzz.
fuzz:
	@scripts/install-deps.sh --fuzz && scripts/fuzz.sh

bench: build
	@scripts/install-deps.sh --bench
	@bench/run-all.sh

format:
	@clang-format -i $$(git ls-files 'src/*.h' 'src/*.cc')

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
