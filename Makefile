# dsx: the two commands a fresh Debian machine needs are `make demo` and
# `make test`; both install what they use.
GO       ?= go
BIN      := bin
CUDA_DIR ?= $(HOME)/.cache/cuda-11.8
# cgo flags for the gpu build: CUDA 11.8 headers and link stubs (gorgonia.org/cu
# v0.9.6 does not compile against 12+ headers); the binary runs on newer drivers.
GPU_ENV   = CGO_ENABLED=1 CGO_CFLAGS="-I$(CUDA_DIR)/include -Wno-deprecated-declarations" CGO_LDFLAGS="-L$(CUDA_DIR)/stubs"
HAVE_GPU := $(shell { ldconfig -p 2>/dev/null | grep -q libcuda.so.1; } && echo yes)

.PHONY: demo test data numpy build build-gpu cuda-headers check-gpu-build kernels bench clean openblas-dev build-openblas test-openblas bench-cpu peers-cpu

## kernels: regenerate the committed PTX from cudakernels/*.cu with nvcc 11.8 (fetched once into ~/.cache)
kernels:
	cudakernels/gen.sh

## demo: install the data, build (the GPU build too when an NVIDIA driver is present), train on the best device
demo: data build
ifeq ($(HAVE_GPU),yes)
	$(MAKE) build-gpu || echo "demo: the GPU build failed (see above); dsx will train on the CPU"
endif
	$(BIN)/dsx train --out model.safetensors

## test: check that the gpu build compiles, run the conformance suite in the openblas build,
## then vet and test the pure-Go build (last, so that its summary closes the output);
## DSX_REQUIRE_NUMPY: the README's numpy snippet must run (TestNumpyRoundTrip), not skip
test: data numpy check-gpu-build test-openblas
	CGO_ENABLED=0 $(GO) vet ./...
	DSX_REQUIRE_NUMPY=1 CGO_ENABLED=0 $(GO) test -count=1 ./...

data:
	scripts/install-data

## numpy: Debian's python3-numpy, for the README's numpy snippet that make test runs (root or sudo)
numpy:
	scripts/install-numpy

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/dsx ./cmd/dsx

cuda-headers:
	scripts/cuda-headers $(CUDA_DIR) >/dev/null

## build-gpu: dsx-gpu, the same command linked against CUDA (never -tags cuda: that is Gorgonia's own CUDA VM)
## It links this machine's libcuda and cuBLAS when present (scripts/build-gpu says how).
build-gpu:
	CUDA_DIR=$(CUDA_DIR) scripts/build-gpu $(BIN)/dsx-gpu

## check-gpu-build: vet the gpu build and compile its tests without running them
## (a gpu test binary does not load without libcuda.so.1)
## and check the CPU fallback end to end with both binaries (scripts/check-fallback)
check-gpu-build: cuda-headers build build-gpu
	$(GPU_ENV) $(GO) vet -tags gpu ./...
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && $(GPU_ENV) $(GO) test -tags gpu -c -o "$$d/" ./... >/dev/null && \
		echo "check-gpu-build: compiled the gpu build's tests of $$(ls "$$d" | wc -l) packages; NOT run (they need libcuda.so.1: scripts/gpu-check runs them on a GPU machine)"
	scripts/check-fallback $(BIN) $(CUDA_DIR)/stubs

bench: build
	$(BIN)/dsx bench --device cpu

## openblas-dev: Debian's OpenBLAS headers and library for the openblas build (root or sudo)
openblas-dev:
	@test -e /usr/lib/x86_64-linux-gnu/libopenblas.so -o -e /usr/lib/aarch64-linux-gnu/libopenblas.so || \
		{ SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libopenblas-dev; }

## build-openblas: bin/dsx-openblas, the CPU backend's products through OpenBLAS (cgo)
build-openblas: openblas-dev
	CGO_ENABLED=1 $(GO) build -tags openblas -o $(BIN)/dsx-openblas ./cmd/dsx

## test-openblas: vet and run the CPU backend and the conformance suite in the openblas build
test-openblas: openblas-dev data
	CGO_ENABLED=1 $(GO) vet -tags openblas ./cpu ./graph ./backend/...
	CGO_ENABLED=1 $(GO) test -tags openblas -count=1 ./cpu ./graph ./backend/conformance

## peers-cpu: Debian's PyTorch and numpy for the CPU peer benchmarks (root or sudo)
peers-cpu:
	@/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || \
		{ SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-torch python3-numpy; }

## bench-cpu: pure-Go build, openblas build, PyTorch and numpy side by side (table on stdout)
bench-cpu: openblas-dev peers-cpu
	bench/run-cpu.sh

clean:
	rm -rf $(BIN)
