package emu

import (
	"testing"

	"dsx/backend/cuda/cudatest"
	_ "dsx/cpu"
)

// The CUDA backend's interface-level tests, on the emulated device.
func TestParity(t *testing.T)           { cudatest.Parity(t, Name) }
func TestStepParity(t *testing.T)       { cudatest.StepParity(t, Name) }
func TestTrainAccuracy(t *testing.T)    { cudatest.TrainAccuracy(t, Name) }
func TestResidentAndStats(t *testing.T) { cudatest.ResidentAndStats(t, Name) }
func TestBF16Storage(t *testing.T)      { cudatest.BF16Storage(t, Name) }
func TestDeterministic(t *testing.T)    { cudatest.Deterministic(t, Name) }
func TestVocabTiles(t *testing.T)       { cudatest.VocabTiles(t, Name) }
func TestDataParallelOne(t *testing.T)  { cudatest.DataParallelOne(t, Name) }

// The variants at T = 12000 rather than 50257: the same launch (a block per
// row whose float32 row, 47 KiB, is too long to cache) in a quarter of the
// emulator's time; its vocabulary tiles 1500 wide (8 tiles) rather than
// 300 (40): the host build runs every thread of the kernels' own code.
func TestVariants(t *testing.T) { cudatest.VariantsTiles(t, Name, 8, 3, 1000, 12000) }
