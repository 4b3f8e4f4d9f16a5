package lower

import (
	"dsx/backend"

	"gorgonia.org/tensor"
)

// Capabilities is the CUDA backend's declaration (backend.Capabilities),
// the same for the GPU (package cuda) and its emulator (cuda-emu), and
// available without the gpu tag (dsx plan checks a Config against it):
// float32 and float64 layers; TF32 and BF16 products and bfloat16 storage
// for float32 layers; row chunks; the fused softmax-cross-entropy with
// every loss option and vocabulary tiles, and the unfused one (PyTorch
// eager's kernels) with hard targets, class weights and an ignore index
// only, over whole rows; data-parallel steps (package run reduces dW and
// db on the device where it can, else through host copies).
func Capabilities() backend.Capabilities {
	return backend.Capabilities{
		DTypes:   []tensor.Dtype{tensor.Float32, tensor.Float64},
		MatModes: []backend.MatMode{backend.TF32, backend.BF16},
		Storages: []backend.Storage{backend.StorageBF16},
		Xents: map[backend.XentImpl]backend.XentCaps{
			backend.Fused:   {Loss: backend.AllLoss, VocabTiles: true},
			backend.Unfused: {Loss: backend.LossCaps{ClassWeights: true, IgnoreIndex: true}},
		},
		Chunks:       true,
		DataParallel: true,
	}
}
