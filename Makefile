# dsx: the two commands a fresh Debian machine needs are `make demo` and
# `make test`; both install what they use.
GO       ?= go
BIN      := bin
CUDA_DIR ?= $(HOME)/.cache/cuda-11.8
# cgo flags for the gpu build: CUDA 11.8 headers and link stubs (gorgonia.org/cu
# v0.9.6 does not compile against 12+ headers); the binary runs on newer drivers.
GPU_ENV   = CGO_ENABLED=1 CGO_CFLAGS="-I$(CUDA_DIR)/include -Wno-deprecated-declarations" CGO_LDFLAGS="-L$(CUDA_DIR)/stubs"
HAVE_GPU := $(shell { ldconfig -p 2>/dev/null | grep -q libcuda.so.1; } && echo yes)

.PHONY: demo test fuzz data numpy build build-gpu cuda-headers check-gpu-build kernels bench clean blas test-blas bench-cpu peers-cpu mpi gxx nvcc test-kernels-tsan test-kernels-reverse

## kernels: regenerate the committed PTX from cudakernels/*.cu with nvcc 11.8 (fetched once into ~/.cache)
kernels:
	cudakernels/gen.sh

## demo: install the data and OpenBLAS's run-time library, build (the GPU build too when an NVIDIA
## driver is present), train on the best device
demo: data blas build
ifeq ($(HAVE_GPU),yes)
	$(MAKE) build-gpu || echo "demo: the GPU build failed (see above); dsx will train on the CPU"
endif
	$(BIN)/dsx train --out model.safetensors

## test: check that the gpu build compiles, run the CPU tests and the conformance suite with
## DSX_BLAS=off (gonum), check the binary with and without a BLAS (scripts/check-blas), then vet
## and test everything with the system's OpenBLAS loaded (last, so that its summary closes the output);
## DSX_REQUIRE_NUMPY: the README's numpy snippet must run (TestNumpyRoundTrip), not skip;
## each fuzzer of the data readers runs 1000 inputs (make fuzz runs them longer); a count, not a
## duration: a duration's deadline races the fuzzing workers on a loaded machine and fails with
## "context deadline exceeded" (golang/go#75804, not fixed in Go 1.26), a count has no deadline;
## Open MPI's mpirun (make mpi) for the data-parallel tests, which skip, saying so, without it;
## DSX_REQUIRE_HOSTKERNELS: the CUDA kernels' own source must build for the host with g++
## (backend/cuda/hostkern) and the emulator must run it, not skip; DSX_REQUIRE_NVCC: the PTX
## must regenerate byte for byte with nvcc 11.8 and its ptxas figures match (TestPTXRegenerates)
test: data numpy blas mpi gxx nvcc check-gpu-build test-blas
	$(MAKE) --no-print-directory fuzz FUZZTIME=1000x
	CGO_ENABLED=0 $(GO) vet ./...
	DSX_REQUIRE_NVCC=1 DSX_REQUIRE_HOSTKERNELS=1 DSX_REQUIRE_NUMPY=1 DSX_WANT_BLAS=loaded CGO_ENABLED=0 $(GO) test -count=1 ./...

## nvcc: CUDA 11.8's nvcc and ptxas, fetched once into ~/.cache/nvcc-11.8 (scripts/nvcc-11.8;
## nothing installed system-wide), for make kernels and TestPTXRegenerates
nvcc:
	@scripts/nvcc-11.8 >/dev/null

## gxx: Debian's g++, which compiles cudakernels/*.cu for the host (backend/cuda/hostkern: the
## emulator and the kernel tests run the kernels' own code); root or sudo
gxx:
	@command -v g++ >/dev/null || scripts/apt-install "the tests compile the CUDA kernels for the host with g++" - g++

## test-kernels-tsan: the host kernels built with ThreadSanitizer (DSX_HOSTKERNELS=tsan), whose
## fibers synchronise only at __syncthreads: a missing barrier is reported as a data race.
## One loss case per kernel path (tiled W = 1, 2, 8; block per row; vocabulary tiles), both dtypes.
TSAN_CASES := mean|soft\+weights\+smooth|softcap\+zloss\+smooth\+none
TSAN_RUN ?= TestHost(Xent|Vocab)Kernels/^T=(33|1025|4096|8003)$$/^($(TSAN_CASES)|tile=[0-9]+)$$/^(f32=.*|$(TSAN_CASES))$$
test-kernels-tsan: gxx
	DSX_HOSTKERNELS=tsan DSX_REQUIRE_HOSTKERNELS=1 CGO_ENABLED=0 $(GO) test -count=1 -timeout 30m -run '$(TSAN_RUN)' ./backend/cuda/emu/

## test-kernels-reverse: the host kernel tests with each block's threads run in reverse order
## (DSX_SHIM_ORDER=reverse), which shows some missing barriers the forward order hides
test-kernels-reverse: gxx
	DSX_SHIM_ORDER=reverse DSX_REQUIRE_HOSTKERNELS=1 CGO_ENABLED=0 $(GO) test -count=1 -run 'TestHost|TestShim|TestLaunch' ./backend/cuda/emu/ ./backend/cuda/hostkern/

## fuzz: run each fuzzer of the data readers (FuzzNPY, FuzzSafetensorsFeatures, FuzzIDX, FuzzCSV)
## for FUZZTIME (default 3m, or a count such as 1000x); an input that fails is saved in
## data/testdata/fuzz/NAME/, where go test runs it from then on (commit it once fixed).
## make test runs 1000 inputs of each.
FUZZTIME ?= 3m
FUZZERS  := FuzzNPY FuzzSafetensorsFeatures FuzzIDX FuzzCSV
fuzz:
	@for f in $(FUZZERS); do \
		log=$$(mktemp) && echo "fuzz: $$f for $(FUZZTIME)" && \
		if CGO_ENABLED=0 $(GO) test ./data -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) >"$$log" 2>&1; then \
			grep '^fuzz: elapsed' "$$log" | tail -1; rm -f "$$log"; \
		else cat "$$log"; rm -f "$$log"; exit 1; fi; \
	done

data:
	scripts/install-data

## numpy: Debian's python3-numpy, for the README's numpy snippet that make test runs (root or sudo)
numpy:
	scripts/install-numpy

## build: bin/dsx, with the git commit stamped for dsx --version and saved models
## (scripts/version-ldflags: go build stamps none in a linked worktree)
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$$(scripts/version-ldflags)" -o $(BIN)/dsx ./cmd/dsx

cuda-headers:
	scripts/cuda-headers $(CUDA_DIR) >/dev/null

## build-gpu: dsx-gpu, the same command linked against CUDA (never -tags cuda: that is Gorgonia's own CUDA VM)
## It links this machine's libcuda and cuBLAS when present (scripts/build-gpu says how).
build-gpu:
	CUDA_DIR=$(CUDA_DIR) scripts/build-gpu $(BIN)/dsx-gpu

## check-gpu-build: vet the gpu build and compile its tests without running them
## (a gpu test binary does not load without libcuda.so.1), run the NCCL binding's tests (which
## need no CUDA: a stand-in libnccl.so.2 built by cc), and check the CPU fallback end to end with
## both binaries (scripts/check-fallback)
check-gpu-build: cuda-headers build build-gpu
	$(GPU_ENV) $(GO) vet -tags gpu ./...
	$(GPU_ENV) $(GO) test -count=1 -tags gpu ./dist/nccl
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && $(GPU_ENV) $(GO) test -tags gpu -c -o "$$d/" ./... >/dev/null && \
		echo "check-gpu-build: compiled the gpu build's tests of $$(ls "$$d" | wc -l) packages; NOT run (they need libcuda.so.1: scripts/gpu-check runs them on a GPU machine)"
	scripts/check-fallback $(BIN) $(CUDA_DIR)/stubs

bench: build
	$(BIN)/dsx bench --device cpu

## blas: Debian's OpenBLAS run-time library (libopenblas0, no -dev package), which bin/dsx loads
## at run time for its CPU products (root or sudo; waits for another apt to finish)
blas:
	@scripts/apt-install "dsx loads OpenBLAS at run time for its CPU products; libopenblas0-pthread also becomes the system's libblas.so.3 and liblapack.so.3 alternative" libopenblas.so.0 libopenblas0

## mpi: Debian's Open MPI (openmpi-bin, which brings libopenmpi3: libmpi.so.40): make test runs
## the data-parallel tests under its mpirun; dsx loads libmpi at run time (root or sudo)
mpi:
	@command -v mpirun.openmpi >/dev/null || \
		scripts/apt-install "make test runs dsx's data-parallel tests under Open MPI's mpirun" - openmpi-bin

## test-blas: the CPU tests and the conformance suite on gonum (DSX_BLAS=off), and the binary's
## checks: CGO_ENABLED=0, OpenBLAS found, and trains where none is found (scripts/check-blas)
test-blas: data blas build
	DSX_BLAS=off DSX_WANT_BLAS=off CGO_ENABLED=0 $(GO) test -count=1 ./cpu ./graph ./internal/sysblas ./backend/conformance
	scripts/check-blas $(BIN)/dsx

## peers-cpu: Debian's PyTorch and numpy for the CPU peer benchmarks (root or sudo)
peers-cpu:
	@/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || \
		scripts/apt-install "bench/run-cpu.sh runs PyTorch and numpy beside dsx" - python3-torch python3-numpy

## bench-cpu: bin/dsx with OpenBLAS and with DSX_BLAS=off, PyTorch and numpy side by side (table on stdout)
bench-cpu: blas peers-cpu
	bench/run-cpu.sh

clean:
	rm -rf $(BIN)
