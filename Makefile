# Lifeboat: the two newcomer commands (make demo, make test) and the pieces they are made of.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all setup build test unit e2e asan fuzz demo bench fmt clean

all: build

setup:
	@bash scripts/setup

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build
	python3 -m pytest -q tests/e2e

asan:
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLIFEBOAT_SANITIZE=ON
	cmake --build build-asan -j $(JOBS) --target unit_tests
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./unit_tests --gtest_brief=1

fuzz:
	bash tests/fuzz/run 20

# Everything a fresh machine needs, then every test: unit, end-to-end, sanitizers, fuzzing.
test: setup
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) asan
	$(MAKE) fuzz

demo: setup build
	bash scripts/demo

bench: setup build
	bash bench/run

fmt:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build build-asan build-fuzz
