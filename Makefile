# dsx: the two commands a fresh Debian machine needs are `make demo` and
# `make test`; both install what they use.
GO       ?= go
BIN      := bin
CUDA_DIR ?= $(HOME)/.cache/cuda-11.8
# cgo flags for the gpu build: CUDA 11.8 headers and link stubs (gorgonia.org/cu
# v0.9.6 does not compile against 12+ headers); the binary runs on newer drivers.
GPU_ENV   = CGO_ENABLED=1 CGO_CFLAGS="-I$(CUDA_DIR)/include -Wno-deprecated-declarations" CGO_LDFLAGS="-L$(CUDA_DIR)/stubs"
HAVE_GPU := $(shell { ldconfig -p 2>/dev/null | grep -q libcuda.so.1; } && echo yes)

.PHONY: demo test data build build-gpu cuda-headers check-gpu-build kernels bench clean

## demo: install the data, build (the GPU build too when an NVIDIA driver is present), train on the best device
demo: data build $(if $(HAVE_GPU),build-gpu)
	$(BIN)/dsx train --out model.safetensors

## test: check that the gpu build compiles, then vet and test the pure-Go build
## (the real tests run last so that their summary closes the output)
test: data check-gpu-build
	CGO_ENABLED=0 $(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./...

data:
	scripts/install-data

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/dsx ./cmd/dsx

cuda-headers:
	scripts/cuda-headers $(CUDA_DIR) >/dev/null

## build-gpu: dsx-gpu, the same command linked against CUDA (never -tags cuda: that is Gorgonia's own CUDA VM)
build-gpu: cuda-headers
	$(GPU_ENV) $(GO) build -tags gpu -o $(BIN)/dsx-gpu ./cmd/dsx

## check-gpu-build: vet the gpu build and compile its tests without running them
## (a gpu test binary does not load without libcuda.so.1)
check-gpu-build: cuda-headers
	$(GPU_ENV) $(GO) vet -tags gpu ./...
	$(GPU_ENV) $(GO) test -tags gpu -count=1 -run '^$$' -exec /bin/true ./...

bench: build
	$(BIN)/dsx bench --device cpu

clean:
	rm -rf $(BIN)
