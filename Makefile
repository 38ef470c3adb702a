# Lifeboat: the two newcomer commands (make demo, make test) and the pieces they are made of.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
# Release: -g costs a third of the build on two cores; the sanitizer build keeps line tables for its reports.
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG"

.PHONY: all setup build test unit e2e asan tsan fuzz demo bench fmt clean install package

all: build

setup:
	@bash scripts/setup

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

LOGS := $(BUILD)/test-logs

unit: build
	@mkdir -p $(LOGS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) 2>&1 | tee test-logs/unit.log; exit $${PIPESTATUS[0]}

e2e: build
	@mkdir -p $(LOGS)
	python3 -m pytest -q -n $(JOBS) --dist loadfile tests/e2e 2>&1 | tee $(LOGS)/e2e.log; exit $${PIPESTATUS[0]}

# The sanitizer builds use clang at -O0 with line tables (half the compile time of -O1): one AddressSanitizer + UBSan build serves the
# unit tests and the fuzzers (libFuzzer coverage in every library), one ThreadSanitizer build runs the
# unit tests again, the concurrent backup + prune + restore among them.
SAN_CMAKE := CC=clang CXX=clang++ cmake -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only"
FUZZ_TARGETS := fuzz_pack_header fuzz_index_file fuzz_index_ids fuzz_tree fuzz_snapshot fuzz_key_file fuzz_oplog fuzz_plan

build-asan/build.ninja:
	$(SAN_CMAKE) -S . -B build-asan -DLIFEBOAT_SANITIZE=address -DLIFEBOAT_FUZZ=ON

asan: build-asan/build.ninja
	@mkdir -p $(LOGS)
	cmake --build build-asan -j $(JOBS) --target unit_tests $(FUZZ_TARGETS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./unit_tests --gtest_brief=1 2>&1 \
	  | tee ../$(LOGS)/asan.log; exit $${PIPESTATUS[0]}

tsan:
	@mkdir -p $(LOGS)
	$(SAN_CMAKE) -S . -B build-tsan -DLIFEBOAT_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS) --target unit_tests
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ./unit_tests --gtest_brief=1 2>&1 \
	  | tee ../$(LOGS)/tsan.log; exit $${PIPESTATUS[0]}

fuzz: build-asan/build.ninja
	@mkdir -p $(LOGS)
	cmake --build build-asan -j $(JOBS) --target $(FUZZ_TARGETS)
	bash tests/fuzz/run build-asan 8 2>&1 | tee $(LOGS)/fuzz.log; exit $${PIPESTATUS[0]}

# Everything a fresh machine needs, then every test: unit, end-to-end, sanitizers (address, thread),
# fuzzing; one closing line counts them all.
test: setup
	@rm -rf $(LOGS)
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) fuzz
	@python3 scripts/test-summary $(LOGS)/unit.log $(LOGS)/e2e.log $(LOGS)/asan.log $(LOGS)/tsan.log $(LOGS)/fuzz.log

demo: setup build
	bash scripts/demo

# Installs the binary (stripped; debug info under lib/debug), man page, bash completion and docs.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# A .deb for Debian 12 with its runtime dependencies declared: apt install ./$(BUILD)/lifeboat_*.deb
package: build
	cd $(BUILD) && cpack -G DEB

bench: setup build
	bash bench/run

fmt:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
