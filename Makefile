# mempool - top-level GNU Makefile.  `make help` lists the targets.
#
# Everything is built under build/ (or $(BUILD) for the sanitizer builds):
#   build/libmempool.a, build/libmempool.so   the library
#   build/bin/                                tb and the benchmark programs
#   build/tests/                              test programs

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
# -fno-plt and hidden visibility keep calls inside the library direct;
# -ftls-model is set per variable (see tcache.c).  gcc's straight-line
# strength reduction turns the malloc fast path's two bin accesses into a
# lea and two plain ones, an instruction more than indexed addressing
# (docs/DESIGN.md); compilers without the flag (clang) are not asked.
NO_SLSR := $(shell $(CC) -Werror -fno-tree-slsr -x c -c /dev/null -o /dev/null 2>/dev/null \
             && echo -fno-tree-slsr)
LIBFLAGS := -std=gnu11 $(OPT) $(NO_SLSR) -g -fPIC -fvisibility=hidden \
            -fno-semantic-interposition -fno-plt -fno-math-errno -Iinclude -Isrc $(WARN) \
            $(EXTRA_CFLAGS)
TESTFLAGS := -std=gnu11 -O1 -g -Iinclude -Isrc -Itests -Itools $(WARN) -Wno-missing-prototypes \
             $(EXTRA_CFLAGS)
LDLIBS  := -lpthread

SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS := $(wildcard src/*.h) include/mempool.h $(wildcard include/mempool/*.h)

LIB_A  := $(BUILD)/libmempool.a
LIB_SO := $(BUILD)/libmempool.so

.PHONY: all lib test bench run-bench sanitize sanitize_asan sanitize_tsan \
        clean help tests-build fastpath bench-build sizeclass-table fuzz fuzz-build fuzz-corpus

all: lib

lib: $(LIB_A) $(LIB_SO)

$(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj
	$(CC) $(LIBFLAGS) -c $< -o $@

$(BUILD)/obj:
	@mkdir -p $@

# The C++ operators are compiled twice, once for each library: see
# src/override_cxx.c.  A new_handler may throw through them: -fexceptions.
OBJS_A := $(filter-out $(BUILD)/obj/override_cxx.o,$(OBJS)) $(BUILD)/obj/override_cxx_a.o
$(BUILD)/obj/override_cxx.o $(BUILD)/obj/override_cxx_a.o: LIBFLAGS += -fexceptions
$(BUILD)/obj/override_cxx_a.o: src/override_cxx.c $(HDRS) | $(BUILD)/obj
	$(CC) $(LIBFLAGS) -DMP_ARCHIVE -c $< -o $@

$(LIB_A): $(OBJS_A)
	@rm -f $@
	ar rcs $@ $^

# -z nodelete: dlclose() must not unmap the library.  Its thread-exit
# destructor stays registered with every thread, and blocks it handed out
# may still be in use anywhere in the process.
$(LIB_SO): $(OBJS)
	$(CC) -shared -Wl,-z,now -Wl,-z,nodelete -Wl,--version-script=src/exports.map \
	    $(EXTRA_LDFLAGS) -o $@ $^ $(LDLIBS)

# The size-class table is constant data generated from the rule in
# tools/sizeclass_rule.h and committed; run this after changing the rule
# (test_sizeclass fails until you do).
sizeclass-table: tools/gen_sizeclass.c tools/sizeclass_rule.h src/types.h
	@mkdir -p $(BUILD)/bin
	$(CC) -std=gnu11 -O1 $(WARN) -Isrc -Itools $< -o $(BUILD)/bin/gen_sizeclass
	$(BUILD)/bin/gen_sizeclass > src/sizeclass_table.h

# ---- tests --------------------------------------------------------------
UNIT_SRCS   := $(wildcard tests/unit/*.c)
API_SRCS    := $(wildcard tests/api/*.c)
MISUSE_SRCS := $(wildcard tests/misuse/*.c)
STRESS_SRCS := $(wildcard tests/stress/*.c)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
PRELOAD_SRCS := $(wildcard tests/preload/*.c)
PRELOAD_CXX  := $(wildcard tests/preload/*.cc)

UNIT_BINS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
API_BINS    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(API_SRCS))
MISUSE_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(MISUSE_SRCS))
STRESS_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(STRESS_SRCS))
FUZZ_BINS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(FUZZ_SRCS))
PRELOAD_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(PRELOAD_SRCS)) \
                $(patsubst tests/%.cc,$(BUILD)/tests/%,$(PRELOAD_CXX))
# Static linking (tests/static/): family.c with the shared library built from
# family_lib.c, and the C++ new_handler test linked with libstdc++.a, alone
# (-static-libstdc++) and with the whole C library (-static).
STATIC_BINS := $(BUILD)/tests/static/family $(BUILD)/tests/static/cxx_new_handler \
               $(BUILD)/tests/static/cxx_new_handler_full
TEST_BINS := $(UNIT_BINS) $(API_BINS) $(MISUSE_BINS) $(STRESS_BINS) $(FUZZ_BINS) $(PRELOAD_BINS) \
             $(STATIC_BINS) $(BUILD)/bin/tb $(BUILD)/tests/fastpath_loop

# Unit tests see the library's internals: they link the static library.
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_A) tests/harness.h tests/unit/xtest.h tools/sizeclass_rule.h
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) $< $(LIB_A) -o $@ $(LDLIBS)

# API, misuse and stress programs link the static library too; run.sh also
# runs the API ones against the shared library with LD_PRELOAD and glibc.
$(BUILD)/tests/api/%: tests/api/%.c $(LIB_A) tests/harness.h tests/api/api_common.h
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) $< $(LIB_A) -o $@ $(LDLIBS)
	$(CC) $(TESTFLAGS) -DMP_TEST_PLAIN $< -o $@.plain $(LDLIBS) -ldl

$(BUILD)/tests/misuse/%: tests/misuse/%.c tests/misuse/misuse.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) -O0 $< $(LIB_A) -o $@ $(LDLIBS)

$(BUILD)/tests/stress/%: tests/stress/%.c $(LIB_A) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) -O2 $< $(LIB_A) -o $@ $(LDLIBS)

# Fuzz targets: with tests/fuzz/driver.c here (seeded inputs, make test);
# with libFuzzer in `make fuzz`.
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) -O2 $< tests/fuzz/driver.c $(LIB_A) -o $@ $(LDLIBS)

$(BUILD)/tests/preload/%: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) -O2 $< -o $@ $(LDLIBS) -ldl

$(BUILD)/tests/preload/%: tests/preload/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 -O2 -g -Wall -Wextra -Werror $< -o $@ $(LDLIBS)

$(BUILD)/tests/static/libfamily.so: tests/static/family_lib.c
	@mkdir -p $(dir $@)
	$(CC) $(TESTFLAGS) -shared -fPIC $< -o $@

$(BUILD)/tests/static/family: tests/static/family.c $(BUILD)/tests/static/libfamily.so $(LIB_A)
	$(CC) $(TESTFLAGS) $< -L$(dir $@) -lfamily -Wl,-rpath,'$$ORIGIN' $(LIB_A) -o $@ $(LDLIBS)

$(BUILD)/tests/static/cxx_new_handler: tests/preload/cxx_new_handler.cc $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 -O2 -g -Wall -Wextra -Werror -static-libstdc++ $< $(LIB_A) -o $@ $(LDLIBS)

$(BUILD)/tests/static/cxx_new_handler_full: tests/preload/cxx_new_handler.cc $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) -std=gnu++17 -O2 -g -Wall -Wextra -Werror -static $< $(LIB_A) -o $@ $(LDLIBS)

# The fast-path guard: a loop of malloc/free pairs counted with callgrind.
$(BUILD)/tests/fastpath_loop: tests/fastpath/fastpath_loop.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(WARN) $< -o $@ -ldl

tests-build: lib $(TEST_BINS)

test: tests-build
	@bash tests/run.sh $(BUILD)

# ---- sanitizers ---------------------------------------------------------
# ASAN cannot sit on top of another malloc, so the sanitizer builds check
# mempool's own code paths: UBSAN+ASAN on the internal layers (the library
# still serves mp_* calls; ASAN keeps serving malloc), TSAN on the threads.
sanitize: sanitize_asan sanitize_tsan

sanitize_asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -DMP_SANITIZE" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" tests-build
	MP_SANITIZER=asan bash tests/run.sh build-asan

sanitize_tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 \
	    EXTRA_CFLAGS="-fsanitize=thread -DMP_SANITIZE" \
	    EXTRA_LDFLAGS="-fsanitize=thread" tests-build
	MP_SANITIZER=tsan bash tests/run.sh build-tsan

# ---- fuzzing ----------------------------------------------------------------
# Coverage-guided fuzzing with clang's libFuzzer, ASAN and UBSAN, for
# FUZZ_SECONDS per target.  The library is built with -DMP_SANITIZE (ASAN
# keeps malloc) and the fuzzer's coverage instrumentation, so that new
# paths inside mempool count.  Inputs collect in build-fuzz/corpus-X, seeded
# from tests/fuzz/X.corpus (unpacked by the gcc build of the target).  A
# crash leaves build-fuzz/crash-*: replay it with build-fuzz/X <file>, or
# with build/tests/fuzz/X <file> (gcc, no sanitizer).  `make fuzz-corpus`
# then merges what was found into tests/fuzz/X.corpus (the inputs that add
# coverage, one hex line each), which `make test` replays.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))

fuzz-build: $(FUZZ_BINS)
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT=-O1 NO_SLSR= \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN) -DMP_SANITIZE" build-fuzz/libmempool.a
	@for x in $(FUZZ_NAMES); do \
	    $(FUZZ_CC) -std=gnu11 -O1 -g -Iinclude -Isrc -fsanitize=fuzzer $(FUZZ_SAN) \
	        tests/fuzz/$$x.c build-fuzz/libmempool.a -o build-fuzz/$$x $(LDLIBS) || exit 1; \
	    rm -rf build-fuzz/seed-$$x && mkdir -p build-fuzz/seed-$$x build-fuzz/corpus-$$x; \
	    $(BUILD)/tests/fuzz/$$x --unpack build-fuzz/seed-$$x tests/fuzz/$$x.corpus || exit 1; \
	done

fuzz: fuzz-build
	@for x in $(FUZZ_NAMES); do \
	    echo "fuzz: $$x for $(FUZZ_SECONDS) s"; \
	    (cd build-fuzz && ./$$x -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	        -print_final_stats=1 corpus-$$x seed-$$x) || exit 1; \
	done

fuzz-corpus: fuzz-build
	@for x in $(FUZZ_NAMES); do \
	    rm -rf build-fuzz/merged-$$x && mkdir -p build-fuzz/merged-$$x; \
	    (cd build-fuzz && ./$$x -merge=1 merged-$$x seed-$$x corpus-$$x 2>&1 | tail -n 1) || exit 1; \
	    $(BUILD)/tests/fuzz/$$x --hex build-fuzz/merged-$$x > tests/fuzz/$$x.corpus || exit 1; \
	    echo "tests/fuzz/$$x.corpus: $$(wc -l < tests/fuzz/$$x.corpus) inputs"; \
	done

# ---- benchmarks -----------------------------------------------------------
NTHREADS ?= 8
ITERS    ?= 300000
MIN      ?= 8
MAX      ?= 256
KEEP     ?= 75

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bin/%,$(BENCH_SRCS))

$(BUILD)/bin/tb: tools/tb.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(WARN) $< -o $@ -lpthread -lm

$(BUILD)/bin/%: bench/%.c bench/bench_common.h bench/x_common.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(WARN) -Iinclude $< -o $@ -lpthread -lm -ldl

bench-build: lib $(BUILD)/bin/tb $(BENCH_BINS)

# tb as in seed 000: the same binary under glibc and under mempool.
run-bench: bench-build
	@echo "glibc:   $$($(BUILD)/bin/tb $(NTHREADS) $(ITERS) $(MIN) $(MAX) $(KEEP))"
	@echo "mempool: $$(LD_PRELOAD=$(abspath $(LIB_SO)) $(BUILD)/bin/tb $(NTHREADS) $(ITERS) $(MIN) $(MAX) $(KEEP))"

bench: bench-build
	@bash bench/run.sh $(BUILD)

fastpath: $(BUILD)/tests/fastpath_loop lib
	@bash tests/fastpath/count.sh $(BUILD) --report

clean:
	rm -rf build build-asan build-tsan build-fuzz

help:
	@echo "mempool make targets:"
	@echo "  make, make lib  build build/libmempool.a and build/libmempool.so"
	@echo "  make tests-build / bench-build / fuzz-build   build without running"
	@echo "  make test       build and run every test (ends with 'N passed, N failed')"
	@echo "  make bench      build and run the benchmark suite against glibc, jemalloc,"
	@echo "                  tcmalloc and mimalloc (RUNS=n, QUICK=1, THREADS=1,2,4,8)"
	@echo "  make run-bench  seed 000's tb: NTHREADS=8 ITERS=300000 MIN=8 MAX=256 KEEP=75"
	@echo "  make fastpath   instruction counts of the malloc/free fast path (callgrind)"
	@echo "  make sanitize   the tests under ASAN+UBSAN and under TSAN"
	@echo "  make sanitize_asan / sanitize_tsan   one of the two"
	@echo "  make fuzz       libFuzzer (clang) on tests/fuzz/fuzz_*.c with ASAN+UBSAN,"
	@echo "                  FUZZ_SECONDS=60 each (make test replays tests/fuzz/*.corpus"
	@echo "                  and seeded random inputs); make fuzz-corpus keeps what it found"
	@echo "  make sizeclass-table  regenerate src/sizeclass_table.h from tools/sizeclass_rule.h"
	@echo "  make clean      remove build outputs"
