# cutover: hand-written GNU make. `make` builds ./cutover; see README.md.

VARIANT   ?= release
BUILD     := build/$(VARIANT)
CC        ?= cc
PKGS      := libevent libevent_openssl libevent_pthreads libnghttp2 libconfig hiredis openssl

CSTD      := -std=c11 -D_GNU_SOURCE
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wold-style-definition -Wpointer-arith -Wcast-align -Wwrite-strings -Wformat=2 \
             -Wundef -Wvla -Wnull-dereference -Wduplicated-cond -Wduplicated-branches \
             -Wlogical-op -Wimplicit-fallthrough -Wno-unused-parameter \
             -Werror=implicit-function-declaration -Werror=incompatible-pointer-types -Werror
HARDEN    := -fstack-protector-strong -fno-strict-overflow
ifeq ($(VARIANT),asan)
OPT       := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DCUT_DEBUG_BUILD=1
LDOPT     := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
OPT       := -O1 -g -fsanitize=thread -DCUT_DEBUG_BUILD=1
LDOPT     := -fsanitize=thread
else
OPT       := -O2 -g -fno-omit-frame-pointer -D_FORTIFY_SOURCE=2
LDOPT     :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS    += $(CSTD) $(WARN) $(HARDEN) $(OPT) -MMD -MP
LDLIBS    += $(PKG_LIBS) -lpthread -lm

CONF_SRC    := $(wildcard conf/*.c)
# pure code from proxy/ (parsing, the allocator) that the unit tests link too (fuzzers: h1parse)
PURE_SRC    := $(wildcard proxy/h1parse.c proxy/mem.c)
ROUTING_SRC := $(filter-out routing/redis_source.c,$(wildcard routing/*.c))
REDIS_SRC   := $(wildcard routing/redis_source.c)
PROXY_SRC   := $(filter-out $(PURE_SRC),$(wildcard proxy/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)

LIB_OBJ     := $(CONF_SRC:%.c=$(BUILD)/%.o) $(ROUTING_SRC:%.c=$(BUILD)/%.o) $(PURE_SRC:%.c=$(BUILD)/%.o)
PROXY_OBJ   := $(PROXY_SRC:%.c=$(BUILD)/%.o) $(REDIS_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIBROUTING  := $(BUILD)/librouting.a
BIN         := $(BUILD)/cutover
ORIGIN      := $(BUILD)/origin

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all cutover test unit e2e bench bench-cutover bench-snapback asan tsan fuzz demo deps lint \
        check-headers format clean

all: cutover

cutover: $(BIN) $(ORIGIN)
ifeq ($(VARIANT),release)
	$(Q)ln -sf $(BIN) cutover
endif

$(BIN): $(PROXY_OBJ) $(LIBROUTING)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(ORIGIN): $(BUILD)/tests/origin/origin.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(LIBROUTING): $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# routing/ unit tests link with librouting.a and -lm only: a socket or
# libevent call from routing/ (other than redis_source.c) fails to link here.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBROUTING)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(shell pkg-config --libs libconfig) -lm

# the socket layer's test links proxy/sock.c and proxy/log.c with libevent and OpenSSL
$(BUILD)/tests/test_sock: $(BUILD)/tests/unit/test_sock.o $(BUILD)/proxy/sock.o \
                          $(BUILD)/proxy/log.o $(LIBROUTING)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

unit: $(UNIT_BIN)
	$(Q)tests/run_unit.sh $(UNIT_BIN)

e2e: cutover
	$(Q)CUTOVER_BIN=$(abspath $(BIN)) ORIGIN_BIN=$(abspath $(ORIGIN)) \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# `make test`: installs what it needs, builds, then unit and end-to-end tests.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory conf-check
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory e2e

conf-check: cutover
	$(Q)for f in conf/*.conf; do $(BIN) -t -c $$f >/dev/null || exit 1; done; echo "conf: all sample configs valid"

asan: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=asan all unit e2e \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

tsan: deps
	$(Q)$(MAKE) --no-print-directory VARIANT=tsan all unit e2e

DEB_PKGS := build-essential pkg-config libevent-dev libssl-dev libnghttp2-dev libconfig-dev \
            libhiredis-dev redis-server nghttp2-client curl \
            python3-pytest python3-h2 python3-httpx python3-redis python3-prometheus-client

deps:
	$(Q)missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "deps: all Debian packages present"; fi

demo: deps cutover
	$(Q)tests/demo.sh

# Peers (nginx, HAProxy, nghttpx), cutover latency and snap-back: bench/README.md.
# `make bench QUICK=1` for a quick run. Installs what it needs; never part of `make test`.
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)QUICK=$(QUICK) bench/run.sh

# Cutover latency: HSET + PUBLISH to traffic on the new track, pub/sub and poll only.
# Writes bench/results/cutover-latency.md. About a minute; bounded in flips and time.
bench-cutover: cutover
	$(Q)/usr/bin/python3 bench/cutover.py --cutover $(abspath $(BIN)) --origin $(abspath $(ORIGIN)) $(BENCH_ARGS)

# Snap-back: canary at 5/10/25 %, faults 5xx / 3x slower / refused, shield on and off, then
# healthy canaries (false trips). Writes bench/results/snapback.md. About 8 minutes; QUICK=1
# shortens the healthy runs (about 5 minutes). Bounded in runs and time.
bench-snapback: cutover
	$(Q)QUICK=$(QUICK) /usr/bin/python3 bench/snapback.py --cutover $(abspath $(BIN)) --origin $(abspath $(ORIGIN)) $(BENCH_ARGS)

# libFuzzer targets (tests/fuzz/), built with clang into build/fuzz/ and each run for
# FUZZ_SECONDS on its seed corpus plus what earlier runs found (build/fuzz/corpus/, out
# of the tree; crashes go to build/fuzz/crashes/). Time-bounded, never part of `test`.
# Needs clang with compiler-rt's libFuzzer: Debian 12's clang-14 + libclang-rt-14-dev.
FUZZ_SECONDS ?= 20
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Wall -Wextra -Wmissing-prototypes -Wno-unused-parameter -Werror -I.
FUZZ_TARGETS := fuzz_h1_request fuzz_h1_response fuzz_h1_chunked
FUZZ_BIN     := $(FUZZ_TARGETS:%=build/fuzz/%)

$(FUZZ_BIN): build/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h tests/fuzz/fuzz_scalar.c \
                           proxy/h1parse.c proxy/h1parse.h
	@command -v $(FUZZ_CC) >/dev/null || \
	  { echo "fuzz: needs $(FUZZ_CC) (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< tests/fuzz/fuzz_scalar.c proxy/h1parse.c

fuzz: $(FUZZ_BIN)
	$(Q)for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/crashes; \
	  echo "fuzz: $$t, $(FUZZ_SECONDS) s"; \
	  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	      build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1 \
	      -dict=tests/fuzz/http.dict -artifact_prefix=build/fuzz/crashes/$$t- \
	      build/fuzz/corpus/$$t tests/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1; then \
	    tail -40 build/fuzz/$$t.log; echo "fuzz: $$t FAILED (build/fuzz/$$t.log)"; exit 1; \
	  fi; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' build/fuzz/$$t.log; \
	done; echo "fuzz: all targets passed"

lint: check-headers
	$(Q)! grep -nE '<event2/|<sys/socket.h>|<nghttp2/|"\.\./proxy/' $(filter-out routing/redis_source.c,$(wildcard routing/*.[ch])) || \
	  (echo "lint: routing/ must not use sockets, libevent or nghttp2"; exit 1)

check-headers:
	$(Q)for h in conf/*.h routing/*.h proxy/*.h; do \
	  echo '#include "'$$h'"' | $(CC) $(CSTD) $(PKG_CFLAGS) -I. -fsyntax-only -x c - || exit 1; done

format:
	$(Q)clang-format -i conf/*.[ch] routing/*.[ch] proxy/*.[ch] tests/unit/*.[ch] tests/origin/*.c

clean:
	rm -rf build cutover

# keep the unit tests' objects (no "rm ..." noise after the test summaries); only
# those: a bare .SECONDARY would also stop make from rebuilding missing binaries
.SECONDARY: $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.o)

-include $(shell find build -name '*.d' 2>/dev/null)
