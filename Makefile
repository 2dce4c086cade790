# vllm-ts build: installs Bun and the JS dependencies if missing, builds the native libraries
# (CPU with g++ always, CUDA with nvcc when present) and compiles the single executable.
SHELL := /bin/bash
comma := ,
space := $() $()
.DEFAULT_GOAL := all
MAKEFLAGS += --jobs=$(shell nproc) --output-sync=target

BUN_VERSION := 1.4.5
BUN := $(or $(shell command -v bun 2>/dev/null),$(CURDIR)/build/tools/node_modules/.bin/bun)
NVCC := $(shell command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })

CXX ?= g++
SHARED_HEADERS := $(wildcard cuda/include/*.h cuda/shared/*.h)
CPU_CXXFLAGS := -std=c++17 -O3 -fopenmp -fPIC -fno-math-errno -Wall -Wextra -Icuda/include -Icuda/shared
CPU_SOURCES := $(wildcard cuda/cpu/*.cpp)
CPU_HEADERS := $(SHARED_HEADERS) $(wildcard cuda/cpu/*.h)

# The CPU library is built once per x86-64 level, lowest first, and the executable embeds them all:
# at start-up it picks the last whose instructions this CPU has (src/backend/cpu-variant.ts), as
# llama.cpp's CPU variants, so one build runs on any AVX2 machine and uses AVX-512 where there is.
# Each variant: its g++ flags, and the /proc/cpuinfo flags of the instructions those let the
# compiler use (test/backend/cpu-variant.test.ts holds the two to each other). x86-64-v3 is the
# floor: the quantized kernels (lanes16.h) need AVX2. Its LZCNT (cpuinfo's "abm") is not asked
# for: every AVX2 CPU has it, and some hypervisors leave it out of the list.
CPU_VARIANTS := x86-64-v3 x86-64-v4 avx512-vnni-bf16
CPU_VARIANT_CXXFLAGS.x86-64-v3 := -march=x86-64-v3
CPU_VARIANT_CPUINFO.x86-64-v3 := avx avx2 bmi1 bmi2 f16c fma movbe
CPU_VARIANT_CXXFLAGS.x86-64-v4 := -march=x86-64-v4
CPU_VARIANT_CPUINFO.x86-64-v4 := $(CPU_VARIANT_CPUINFO.x86-64-v3) avx512f avx512bw avx512cd avx512dq avx512vl
# Cooper Lake, Sapphire Rapids, Zen 4 and later: VNNI's byte dot products in the quantized matmuls.
CPU_VARIANT_CXXFLAGS.avx512-vnni-bf16 := -march=x86-64-v4 -mavx512vnni -mavx512bf16
CPU_VARIANT_CPUINFO.avx512-vnni-bf16 := $(CPU_VARIANT_CPUINFO.x86-64-v4) avx512_vnni avx512_bf16
cpu_variant_lib = build/libvllm_ts_cpu-$(1).so
CPU_LIBS := $(foreach variant,$(CPU_VARIANTS),$(call cpu_variant_lib,$(variant)))

# The CUDA backend: cuda/gpu/*.cu, built by nvcc for the GPU when nvcc is present, and always by
# g++ against the CPU emulation of CUDA (cuda/emu/) for the tests (for this machine alone, hence
# -march=native: the emulated library is never embedded).
GPU_SOURCES := $(wildcard cuda/gpu/*.cu)
GPU_HEADERS := $(SHARED_HEADERS) $(wildcard cuda/gpu/*.cuh)
CUDA_LIB := $(if $(and $(NVCC),$(GPU_SOURCES)),build/libvllm_ts_cuda.so)
NVCC_FLAGS := -O3 -std=c++17 -Xcompiler -fPIC -Icuda/include -Icuda/shared -Icuda/gpu \
	-gencode arch=compute_80,code=sm_80 -gencode arch=compute_89,code=sm_89 \
	-gencode arch=compute_90,code=sm_90
EMU_LIB := build/libvllm_ts_cuda_emu.so
EMU_CXXFLAGS := -std=c++17 -O2 -march=native -fopenmp -fPIC -fno-math-errno -Wall -Wextra -Wno-unknown-pragmas \
	-Icuda/include -Icuda/shared -Icuda/gpu -Icuda/emu
EMU_HEADERS := $(GPU_HEADERS) $(wildcard cuda/emu/*.h)

TS_SOURCES := $(shell find src -name '*.ts')
EXECUTABLE := dist/vllm-ts
# The threads' entries, compiled into the executable beside the command's.
WORKER_ENTRIES := src/engine/core-worker.ts src/engine/structured-output/grammar-check-worker.ts \
	src/engine/structured-output/grammar-worker.ts src/server/tokenizer-worker.ts

.PHONY: all deps native gpu-kit chromium llama-cpp llama-cpp-tools clang-format lint format test serve bench clean

all: $(EXECUTABLE)

# Bun from the npm registry when the machine has none.
$(CURDIR)/build/tools/node_modules/.bin/bun:
	mkdir -p build/tools
	npm install --prefix build/tools --no-save --no-audit --no-fund bun@$(BUN_VERSION)

node_modules/.installed: package.json bun.lock | $(BUN)
	$(BUN) install --frozen-lockfile
	touch $@

deps: node_modules/.installed

# A CPU variant's objects in build/cpu-<variant>/, one per source so make compiles them in parallel.
define cpu_variant_rules
build/cpu-$(1)/%.o: cuda/cpu/%.cpp $$(CPU_HEADERS)
	mkdir -p $$(@D)
	$$(CXX) $$(CPU_CXXFLAGS) $$(CPU_VARIANT_CXXFLAGS.$(1)) -c -o $$@ $$<

build/cpu-$(1)/status.o: cuda/shared/status.cpp $$(SHARED_HEADERS)
	mkdir -p $$(@D)
	$$(CXX) $$(CPU_CXXFLAGS) $$(CPU_VARIANT_CXXFLAGS.$(1)) -c -o $$@ $$<

$(call cpu_variant_lib,$(1)): $$(patsubst cuda/cpu/%.cpp,build/cpu-$(1)/%.o,$$(CPU_SOURCES)) build/cpu-$(1)/status.o
	$$(CXX) $$(CPU_CXXFLAGS) $$(CPU_VARIANT_CXXFLAGS.$(1)) -shared -o $$@ $$^
endef
$(foreach variant,$(CPU_VARIANTS),$(eval $(call cpu_variant_rules,$(variant))))

# One object per .cu file so make compiles them in parallel; cudart is linked statically, so the
# library needs only the driver (libcuda.so) at run time, and cuBLAS is opened with dlopen.
GPU_OBJECTS := $(patsubst cuda/gpu/%.cu,build/cuda/%.o,$(GPU_SOURCES)) build/cuda/status.o

build/cuda/%.o: cuda/gpu/%.cu $(GPU_HEADERS)
	mkdir -p build/cuda
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<

build/cuda/status.o: cuda/shared/status.cpp $(SHARED_HEADERS)
	mkdir -p build/cuda
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<

build/libvllm_ts_cuda.so: $(GPU_OBJECTS)
	$(NVCC) $(NVCC_FLAGS) -shared -o $@ $(GPU_OBJECTS) -ldl

# The same kernel sources compiled as C++ against the emulation: every CUDA thread a fiber.
EMU_OBJECTS := $(patsubst cuda/gpu/%.cu,build/emu/%.o,$(GPU_SOURCES)) \
	$(patsubst cuda/emu/%.cpp,build/emu/emu_%.o,$(wildcard cuda/emu/*.cpp)) build/emu/status.o

build/emu/%.o: cuda/gpu/%.cu $(EMU_HEADERS)
	mkdir -p build/emu
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c -o $@ $<

build/emu/emu_%.o: cuda/emu/%.cpp $(EMU_HEADERS)
	mkdir -p build/emu
	$(CXX) $(EMU_CXXFLAGS) -c -o $@ $<

build/emu/status.o: cuda/shared/status.cpp $(SHARED_HEADERS)
	mkdir -p build/emu
	$(CXX) $(CPU_CXXFLAGS) -c -o $@ $<

$(EMU_LIB): $(EMU_OBJECTS)
	$(CXX) $(EMU_CXXFLAGS) -shared -o $@ $(EMU_OBJECTS) -ldl

# The emulated library again with AddressSanitizer, the CPU's stand-in for compute-sanitizer's
# memcheck: any kernel reading or writing outside its buffers (cudaMalloc is an exact-size
# allocation here) aborts the test run with the faulting line.
EMU_ASAN_LIB := build/libvllm_ts_cuda_emu_asan.so
EMU_ASAN_CXXFLAGS := $(filter-out -O2,$(EMU_CXXFLAGS)) -O1 -g -fsanitize=address -fno-omit-frame-pointer
EMU_ASAN_OBJECTS := $(patsubst build/emu/%,build/emu-asan/%,$(EMU_OBJECTS))
LIBASAN = $(shell $(CXX) -print-file-name=libasan.so)
ASAN_TEST_OPTIONS := detect_leaks=0:detect_stack_use_after_return=0:halt_on_error=1:allocator_may_return_null=1

build/emu-asan/%.o: cuda/gpu/%.cu $(EMU_HEADERS)
	mkdir -p build/emu-asan
	$(CXX) $(EMU_ASAN_CXXFLAGS) -x c++ -c -o $@ $<

build/emu-asan/emu_%.o: cuda/emu/%.cpp $(EMU_HEADERS)
	mkdir -p build/emu-asan
	$(CXX) $(EMU_ASAN_CXXFLAGS) -c -o $@ $<

build/emu-asan/status.o: cuda/shared/status.cpp $(SHARED_HEADERS)
	mkdir -p build/emu-asan
	$(CXX) $(EMU_ASAN_CXXFLAGS) -c -o $@ $<

$(EMU_ASAN_LIB): $(EMU_ASAN_OBJECTS)
	$(CXX) $(EMU_ASAN_CXXFLAGS) -shared -o $@ $(EMU_ASAN_OBJECTS) -ldl

# Checks of the emulation itself (test/native/emulation.test.ts runs it).
EMU_SELFTEST := build/emu-selftest
$(EMU_SELFTEST): test/native/emulation/selftest.cu $(filter build/emu/emu_%.o,$(EMU_OBJECTS)) build/emu/status.o $(EMU_HEADERS)
	$(CXX) $(EMU_CXXFLAGS) -x c++ $< -x none $(filter build/emu/emu_%.o,$(EMU_OBJECTS)) build/emu/status.o -o $@

# The ABI's version, enums and bun:ffi symbol table, read from the header: TypeScript never restates
# the C ABI, so a call with the wrong arguments does not compile.
ABI_MODULE := build/vllm-ts-abi.ts
$(ABI_MODULE): cuda/include/vllm_ts.h src/backend/abi-header.ts | $(BUN)
	mkdir -p build
	$(BUN) src/backend/abi-header.ts $< > $@.partial && mv $@.partial $@

# The libraries a build embeds (package.json's "#embedded-libraries"; `bun build --compile` bundles
# each as a file) and the table of CPU variants that src/backend/cpu-variant.ts chooses from,
# written from CPU_VARIANTS: so it is remade when this Makefile changes.
cpu_variant_import = cpu_$(subst -,_,$(1))
quoted_list = $(subst $(space),$(comma) ,$(patsubst %,"%",$(1)))

build/embedded-libraries.ts: $(CPU_LIBS) $(CUDA_LIB) Makefile
	{ echo "// Generated by make: the native libraries embedded in this build."; \
	  $(foreach variant,$(CPU_VARIANTS),echo 'import $(call cpu_variant_import,$(variant)) from "./$(notdir $(call cpu_variant_lib,$(variant)))" with { type: "file" };';) \
	  $(if $(CUDA_LIB),echo 'import cuda from "./$(notdir $(CUDA_LIB))" with { type: "file" };';) \
	  echo 'export const cudaLibrary: string | null = $(if $(CUDA_LIB),cuda,null);'; \
	  echo "/** The CPU library's variants, lowest first (the Makefile's CPU_VARIANTS). */"; \
	  echo 'export const cpuVariants = ['; \
	  $(foreach variant,$(CPU_VARIANTS),echo '  { name: "$(variant)", compilerFlags: "$(CPU_VARIANT_CXXFLAGS.$(variant))", cpuFlags: [$(call quoted_list,$(CPU_VARIANT_CPUINFO.$(variant)))], library: $(call cpu_variant_import,$(variant)) },';) \
	  echo '];'; } > $@

native: build/embedded-libraries.ts $(ABI_MODULE)

$(EXECUTABLE): node_modules/.installed build/embedded-libraries.ts $(ABI_MODULE) $(TS_SOURCES)
	mkdir -p dist
	$(BUN) build --compile --minify-syntax src/cli/main.ts $(WORKER_ENTRIES) --outfile $@

# The GPU check's kit (bench/gpu/check.sh): everything a bare GPU machine (no network, no Bun)
# needs, under 60 MiB: the executable (CUDA library embedded), the kernel, model and engine tests
# bundled with their dependencies (the embedded libraries beside them as files), the check's
# scripts, the Python baselines and the benchmark models' configs. Large files are xz-compressed.
# The GPU machine's host CPU is not this one: the executable and the tests choose their CPU
# variant there, at start-up, as anywhere.
KIT := build/gpu-kit
KIT_TESTS := $(filter-out test/native/emulation.test.ts,$(wildcard test/native/*.test.ts)) \
	test/worker/forward.test.ts test/worker/quantized-forward.test.ts test/worker/decode-graphs.test.ts \
	test/engine/cuda-backend.test.ts
KIT_INPUTS := $(TS_SOURCES) $(shell find test bench/gpu -name '*.ts') bench/gpu/check.sh \
	bench/torch_baseline.py bench/hf_generate_baseline.py $(wildcard bench/models/*/config.json)

$(KIT)/.complete: $(EXECUTABLE) node_modules/.installed build/embedded-libraries.ts $(ABI_MODULE) $(KIT_INPUTS)
	rm -rf $(KIT) && mkdir -p $(KIT)
	cp $(EXECUTABLE) $(KIT)/vllm-ts
	$(BUN) build --target bun --splitting --root test --outdir $(KIT)/tests \
	  --asset-naming '[name].[ext]' --chunk-naming 'chunks/[name]-[hash].[ext]' $(KIT_TESTS)
	$(BUN) build --target bun --outdir $(KIT) bench/gpu/check.ts bench/gpu/e2e.ts
	cp bench/gpu/check.sh bench/torch_baseline.py bench/hf_generate_baseline.py $(KIT)/
	cp -r bench/models $(KIT)/models
	xz -T0 -1 $(KIT)/vllm-ts $(KIT)/tests/*.so $(KIT)/tests/tokenizer.json
	touch $@

gpu-kit: $(KIT)/.complete

# Formatting and lint, checked by `make test` (so CI fails on unformatted code): Biome for
# TypeScript (biome.json), clang-format for C++ and CUDA (.clang-format; Debian's clang-format,
# installed when missing as chromium is). `make format` rewrites the files instead.
CXX_FORMAT_FILES := $(shell find cuda test/native/emulation -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' -o -name '*.h')

clang-format:
	@command -v clang-format >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang-format; }

lint: node_modules/.installed clang-format
	$(BUN) x biome ci .
	clang-format --dry-run --Werror $(CXX_FORMAT_FILES)

format: node_modules/.installed clang-format
	$(BUN) x biome check --write .
	clang-format -i $(CXX_FORMAT_FILES)

# The benchmark charts' test renders SVG in headless Chromium, from Debian's package.
chromium:
	@[ -x /usr/bin/chromium ] || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# llama.cpp's prebuilt CPU libraries (the npm package node-llama-cpp ships), for the tests that
# check the quantized formats against llama.cpp's own code and for peer benchmarks. Optional:
# those tests say they are skipped without it; CI does not install it.
LLAMA_CPP_DIR := build/llama.cpp
llama-cpp: $(LLAMA_CPP_DIR)/lib/libggml-base.so
$(LLAMA_CPP_DIR)/lib/libggml-base.so:
	rm -rf $(LLAMA_CPP_DIR) && mkdir -p $(LLAMA_CPP_DIR)/lib
	cd $(LLAMA_CPP_DIR) && npm pack --silent @node-llama-cpp/linux-x64@3.22.1 && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz
	cp $(LLAMA_CPP_DIR)/package/bins/linux-x64/*.so $(LLAMA_CPP_DIR)/lib/

# llama.cpp's own benchmark and quantize tools, for the side-by-side benchmark (bench/peer/): only
# the tools' files are compiled, from the git bundle of the same llama.cpp build (0ad4a86) that
# node-llama-cpp ships, against the prebuilt libraries above. They sit beside those libraries
# because ggml looks for its CPU variants (libggml-cpu-*.so) in the executable's folder. Optional
# as `llama-cpp` is; CI does not build them.
LLAMA_CPP_SOURCE := $(LLAMA_CPP_DIR)/source
LLAMA_CPP_TOOLS := $(addprefix $(LLAMA_CPP_DIR)/lib/,llama-bench llama-batched-bench llama-quantize)
LLAMA_CPP_TOOL_FLAGS := -std=c++17 -O2 -DNDEBUG -pthread -I$(LLAMA_CPP_SOURCE)/include \
	-I$(LLAMA_CPP_SOURCE)/ggml/include -I$(LLAMA_CPP_SOURCE)/common
LLAMA_CPP_TOOL_LIBS := -L$(LLAMA_CPP_DIR)/lib -l:libllama-common.so -l:libllama.v0.5.0.so \
	-l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,'$$ORIGIN'
llama-cpp-tools: $(LLAMA_CPP_TOOLS)

$(LLAMA_CPP_SOURCE)/.cloned: $(LLAMA_CPP_DIR)/lib/libggml-base.so
	rm -rf $(LLAMA_CPP_SOURCE) $(LLAMA_CPP_DIR)/node-llama-cpp && mkdir -p $(LLAMA_CPP_DIR)/node-llama-cpp
	cd $(LLAMA_CPP_DIR)/node-llama-cpp && npm pack --silent node-llama-cpp@3.22.1 && \
	  tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle
	git -c advice.detachedHead=false clone --quiet $(LLAMA_CPP_DIR)/node-llama-cpp/package/llama/gitRelease.bundle $(LLAMA_CPP_SOURCE)
	touch $@

# Each tool is its folder's main.cpp and the file of the same name as the folder's library.
$(LLAMA_CPP_DIR)/lib/llama-bench: LLAMA_CPP_TOOL := llama-bench/llama-bench
$(LLAMA_CPP_DIR)/lib/llama-batched-bench: LLAMA_CPP_TOOL := batched-bench/batched-bench
$(LLAMA_CPP_DIR)/lib/llama-quantize: LLAMA_CPP_TOOL := quantize/quantize
$(LLAMA_CPP_TOOLS): $(LLAMA_CPP_SOURCE)/.cloned
	$(CXX) $(LLAMA_CPP_TOOL_FLAGS) $(LLAMA_CPP_SOURCE)/tools/$(dir $(LLAMA_CPP_TOOL))main.cpp \
	  $(LLAMA_CPP_SOURCE)/tools/$(LLAMA_CPP_TOOL).cpp -o $@ $(LLAMA_CPP_TOOL_LIBS)

# Formatting and lint first, then the whole suite on the CPU backend (it also runs the engine end to end on the emulated CUDA
# library), then the native-op and model tests again on the CUDA kernels running in the
# emulation under AddressSanitizer (VLLM_TS_LIBRARY points every backend the tests open at it),
# then the GPU check's rehearsal: the kit's bundled tests, end-to-end runs and benchmark commands
# on the emulated CUDA library at tiny shapes (it fails if any stage fails). `all` has already
# compiled the real CUDA library when nvcc is present.
test: lint all chromium $(EMU_LIB) $(EMU_ASAN_LIB) $(EMU_SELFTEST) gpu-kit
	$(BUN) x tsc --noEmit -p .
	$(BUN) test --timeout 120000
	ASAN_OPTIONS=$(ASAN_TEST_OPTIONS) LD_PRELOAD=$(LIBASAN) VLLM_TS_LIBRARY=$(CURDIR)/$(EMU_ASAN_LIB) \
	  $(BUN) test --timeout 300000 test/native test/worker/forward.test.ts test/worker/quantized-forward.test.ts
	OUT=$(CURDIR)/build/gpu-check-dry-run LIBASAN=$(LIBASAN) ASAN_TEST_OPTIONS=$(ASAN_TEST_OPTIONS) \
	  bash bench/gpu/check.sh --dry-run

# The main job: the OpenAI-compatible server, on the embedded demo model.
serve: all
	$(EXECUTABLE) serve

bench: all
	$(BUN) bench/forward.ts

clean:
	rm -rf build dist
