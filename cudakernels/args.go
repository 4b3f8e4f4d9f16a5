package cudakernels

import "strconv"

// Typed kernel arguments. Each struct below is the parameter list of one
// family of kernels, field for field in the order of the CUDA signature
// (TestSignatures parses the extern "C" __global__ declarations of the .cu
// files and checks every kernel against its struct: names, order and kind).
//
// Every field is 8 bytes (Ptr, int64 or float64): gorgonia.org/cu copies
// each kernel argument as 8 bytes, and the kernels declare every scalar as
// long long or double. A launcher passes the address of each field, so
// filling a struct and launching allocates nothing.

// Ptr is a device address (CUdeviceptr); 0 is NULL.
type Ptr uint64

// Flags of the loss kernels (xent.cu, xvocab.cu, unfused.cu): the XENT_*
// macros of xent_row.cuh. TestSignatures checks the values.
const (
	XentSoft   int64 = 1  // targets are rows×T probabilities
	XentIgnore int64 = 2  // ignore_index is in use
	XentGrad   int64 = 4  // write the gradient over z
	XentMean   int64 = 8  // reduction mean (xent_scale only)
	XentCache  int64 = 16 // cache the row in dynamic shared memory (xent_f32/_f64)
)

// Xent: xent_f32, xent_f64 and the tiled xent_t<Tmax>_f32/_f64 (xent.cu).
type Xent struct {
	Z       Ptr     // rows×Ld logits in, the gradient out (XentGrad)
	Ld      int64   // row stride of Z (elements)
	Tg      Ptr     // rows labels stored as F, or rows×Ldt probabilities
	Ldt     int64   // row stride of probability targets
	W       Ptr     // T class weights (double), or 0
	RowLoss Ptr     // rows per-row losses sc·ce + sz·zl (double), out
	Losses  Ptr     // rows per-row losses ce + zl in F, or 0
	ScaleP  Ptr     // 2 doubles: the reduction scales sc and sz (from xent_scale)
	Rows    int64   // valid rows
	T       int64   // classes
	Flags   int64   // Xent* flags
	Ignore  int64   // ignore_index
	Eps     float64 // label smoothing
	WSum    float64 // Σ_c w_c (T without weights)
	GScale  float64 // upstream gradient of the loss
	Softcap float64 // logit soft-cap c (0: none)
	ZLoss   float64 // z-loss λ (0: none)
	Bias    Ptr     // T bias added to each row as it is read, or 0
	G16     Ptr     // rows×T the gradient rounded to bfloat16 (row stride T), or 0
}

// XentScale: xent_scale_f32/_f64 (xent.cu).
type XentScale struct {
	Tg     Ptr   // rows labels stored as F (unused for probability targets)
	W      Ptr   // T class weights (double), or 0
	ScaleP Ptr   // 2 doubles, out: the cross-entropy's and the z-loss's scales
	Rows   int64 // rows of the whole batch
	T      int64
	Flags  int64
	Ignore int64
}

// XentReduce: xent_reduce (xent.cu): out = Σ rowloss (the row losses carry
// their reduction scales).
type XentReduce struct {
	RowLoss Ptr // rows doubles
	Out     Ptr // 1 double, out
	Rows    int64
}

// XVocabStats: xvocab_stats_f32/_f64 (xvocab.cu): one vocabulary tile's
// softmax statistics merged into each row's running Acc. Flags are XentSoft
// and XentIgnore.
type XVocabStats struct {
	Z       Ptr   // rows×Vt the tile's logits x·W (dense)
	C0      int64 // the tile's first column
	Vt      int64 // its columns
	Tg      Ptr   // rows labels stored as F, or rows×T probabilities
	W       Ptr   // T class weights (double), or 0
	Bias    Ptr   // T bias, or 0
	Acc     Ptr   // rows×4 doubles {m, s, d, A}, in/out
	Zy      Ptr   // rows doubles: ẑ at the label, out
	Rows    int64
	T       int64
	Flags   int64
	Ignore  int64
	Eps     float64
	Softcap float64 // soft cap (0: none)
	First   int64   // 1 for the first tile: Acc is set, not merged
}

// XVocabFinish: xvocab_finish_f32/_f64 (xvocab.cu): the row losses from the
// statistics of every tile, and each row's m, L, S for xvocab_grad.
type XVocabFinish struct {
	Acc     Ptr // rows×4 doubles
	Zy      Ptr // rows doubles
	Tg      Ptr // rows labels stored as F (unused for probabilities)
	W       Ptr // T class weights (double), or 0
	RowLoss Ptr // rows doubles sc·ce + sz·zl, out
	Losses  Ptr // rows in F: ce + zl, or 0
	ScaleP  Ptr // 2 doubles (xent_scale)
	St      Ptr // rows×3 doubles {m, L, S}, out
	Rows    int64
	T       int64
	Flags   int64
	Ignore  int64
	Eps     float64
	WSum    float64
	ZLoss   float64
}

// XVocabGrad: xvocab_grad_f32/_f64 (xvocab.cu): the gradient over one tile
// in place (and in bfloat16 to G16 when not 0).
type XVocabGrad struct {
	Z       Ptr // rows×Vt logits in, gradient out
	C0      int64
	Vt      int64
	Tg      Ptr
	W       Ptr
	Bias    Ptr
	St      Ptr // rows×3 doubles from xvocab_finish
	ScaleP  Ptr // 2 doubles
	G16     Ptr // rows×Vt bfloat16, or 0
	Part    Ptr // gridDim.y×Vt doubles: column sums by row slab (db's share), or 0
	Rows    int64
	T       int64
	Flags   int64
	Ignore  int64
	Eps     float64
	GScale  float64
	Softcap float64
	ZLoss   float64
}

// BiasAdd: bias_add_f32/_f64 (bias.cu): z[r, c] += b[c].
type BiasAdd struct {
	Z    Ptr // rows×Ld
	Ld   int64
	B    Ptr // T
	Rows int64
	T    int64
}

// ColSumPart: colsum_part_f32/_f64 (bias.cu): part[s·T + c] = Σ over slab s
// of g[r, c].
type ColSumPart struct {
	G    Ptr // rows×Ld
	Ld   int64
	Part Ptr // S×T doubles
	Rows int64
	T    int64
	S    int64 // slabs
}

// ColSumFin: colsum_fin_f32/_f64 (bias.cu): db[c] = Σ_s part[s·T + c]
// (+ db[c] when Acc ≠ 0).
type ColSumFin struct {
	Part Ptr // S×T doubles
	DB   Ptr // T
	T    int64
	S    int64
	Acc  int64
}

// ToBF16: to_bf16 (bias.cu): dst[i] = bfloat16(src[i]).
type ToBF16 struct {
	Src Ptr // N float32
	Dst Ptr // N bfloat16
	N   int64
}

// SGD: sgd_f32/_f64 (optim.cu).
type SGD struct {
	W        Ptr // N parameters, in/out
	G        Ptr // N gradient
	V        Ptr // N momentum buffer, or 0 when Momentum = 0
	N        int64
	LR       float64
	Momentum float64
	WD       float64
	W16      Ptr // n bfloat16 copy of W, out (bfloat16 storage), or 0
}

// Adam: adam_f32/_f64 (optim.cu); Decoupled ≠ 0 is AdamW.
type Adam struct {
	W         Ptr // N parameters, in/out
	G         Ptr // N gradient
	M         Ptr // N first moment, in/out
	V         Ptr // N second moment, in/out
	N         int64
	LR        float64
	B1        float64
	B2        float64
	Eps       float64
	WD        float64
	Decoupled int64
	BC1       float64 // 1 − β1^t
	BC2       float64 // 1 − β2^t
	W16       Ptr     // n bfloat16 copy of W, out (bfloat16 storage), or 0
}

// LogSoftmax: log_softmax_f32/_f64 (unfused.cu).
type LogSoftmax struct {
	Z    Ptr // rows×T
	LP   Ptr // rows×T, out
	Rows int64
	T    int64
	Bias Ptr // T, or 0
}

// NLL: nll_f32/_f64 (unfused.cu).
type NLL struct {
	LP      Ptr // rows×T log-probabilities
	Tg      Ptr // rows labels stored as F
	W       Ptr // T class weights (double), or 0
	RowLoss Ptr // rows doubles, out: scale·loss
	Losses  Ptr // rows in F, or 0
	ScaleP  Ptr // the reduction scale (xent_scale's first)
	Rows    int64
	T       int64
	Flags   int64
	Ignore  int64
}

// NLLGrad: nll_grad_f32/_f64 (unfused.cu).
type NLLGrad struct {
	G      Ptr // rows×T, out
	Tg     Ptr // rows labels stored as F
	W      Ptr // T class weights (double), or 0
	ScaleP Ptr // 1 double
	Rows   int64
	T      int64
	Flags  int64
	Ignore int64
	GScale float64
}

// LogSoftmaxGrad: log_softmax_grad_f32/_f64 (unfused.cu).
type LogSoftmaxGrad struct {
	G    Ptr // rows×T, in place
	LP   Ptr // rows×T
	Rows int64
	T    int64
}

// Kernel is one kernel entry point of a module.
type Kernel struct {
	Name   string
	Module string // the .cu file (without .cu) that defines it
	Args   any    // a zero value of its argument struct
}

// XentTiles are the row sizes Tmax of the tiled kernels xent_t<Tmax>_<F>.
var XentTiles = []int{32, 64, 128, 256, 512, 1024, 2048, 4096}

// Kernels lists every kernel the backend loads, with its module and
// argument struct.
var Kernels = func() []Kernel {
	var ks []Kernel
	both := func(module, base string, args any) {
		ks = append(ks, Kernel{base + "_f32", module, args}, Kernel{base + "_f64", module, args})
	}
	both("xent", "xent", Xent{})
	for _, t := range XentTiles {
		both("xent", "xent_t"+strconv.Itoa(t), Xent{})
	}
	both("xent", "xent_scale", XentScale{})
	ks = append(ks, Kernel{"xent_reduce", "xent", XentReduce{}})
	both("bias", "bias_add", BiasAdd{})
	both("bias", "colsum_part", ColSumPart{})
	both("bias", "colsum_fin", ColSumFin{})
	ks = append(ks, Kernel{"to_bf16", "bias", ToBF16{}})
	both("optim", "sgd", SGD{})
	both("optim", "adam", Adam{})
	both("xvocab", "xvocab_stats", XVocabStats{})
	both("xvocab", "xvocab_finish", XVocabFinish{})
	both("xvocab", "xvocab_grad", XVocabGrad{})
	both("unfused", "log_softmax", LogSoftmax{})
	both("unfused", "nll", NLL{})
	both("unfused", "nll_grad", NLLGrad{})
	both("unfused", "log_softmax_grad", LogSoftmaxGrad{})
	return ks
}()
