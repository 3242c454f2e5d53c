# The README's two commands: `make run` and `make test`.  Both install what
# is missing (scripts/deps.sh: Debian packages, and FAISS built once into a
# cache prefix outside the checkout), then build.
#
#   make            build everything into build/
#   make run        build, run the demo tour on an embedded database (RUN_DIR), load the
#                   demo collections there once, then serve it on 127.0.0.1:7700 (Ctrl-C stops)
#   make test       build, run every suite, then again under ASan + UBSan
#   make bench      build, then run the benchmarks in bench/
#   make clean      remove build directories (not the FAISS cache)

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
RUN_DIR    ?= vsearch-data
CMAKE_ARGS ?=

.PHONY: all deps build run test test-fast test-asan bench clean

all: build

deps:
	@scripts/deps.sh > $(BUILD).faiss-prefix.tmp && mkdir -p $(BUILD) && \
	  tail -n 1 $(BUILD).faiss-prefix.tmp > $(BUILD)/faiss-prefix && rm -f $(BUILD).faiss-prefix.tmp

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFAISS_PREFIX=$$(cat $(BUILD)/faiss-prefix) $(CMAKE_ARGS) > $(BUILD)/cmake.log || \
	  (cat $(BUILD)/cmake.log; exit 1)
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/vsearch demo $(RUN_DIR)
	$(BUILD)/vsearch demo-data $(RUN_DIR)
	$(BUILD)/vsearch serve $(RUN_DIR)

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@mkdir -p $(ASAN_BUILD)
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVS_SANITIZE=ON \
	  -DFAISS_PREFIX=$$(cat $(BUILD)/faiss-prefix) $(CMAKE_ARGS) > $(ASAN_BUILD)/cmake.log || \
	  (cat $(ASAN_BUILD)/cmake.log; exit 1)
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test: test-fast test-asan

bench: build
	$(BUILD)/bench_upsert

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
