// Command dsx trains, evaluates, predicts with and benchmarks the softmax
// classifier head on the best device available.
//
//	dsx train   [--data DIR | --train F [--train-labels F] --test F [--test-labels F]] [--out model.safetensors] [--device auto|cpu|cuda] ...
//	dsx eval    --model F [--data DIR | --test F [--test-labels F]]
//	dsx predict --model F [--data DIR | --test F] [--proba] [--top K] [--out F.csv|F.npy|F.npz|F.json]
//	dsx devices [--json]
//	dsx bench   [--shapes 4096x784x10,...] [--json] [--plot F.png]
//	dsx plan    [--shape BxNxT] [--json]
//	dsx version [--json]    (or dsx --version)
//
// Data files may be CSV, .npy, safetensors or IDX (see package data);
// predict takes data without labels too. Every command-line check comes
// before the device is chosen (eval's and predict's checks against the
// model right after reading it); a bad command line exits with status 2,
// naming the nearest command or flag to a mistyped one.
//
// Built without the gpu tag it is pure Go; built with it (make build-gpu) it
// is dsx-gpu, which links CUDA. The pure-Go dsx probes dsx-gpu in a child
// process and re-executes it when a GPU is usable, so --device auto works on
// machines without a driver, with a driver but no device, and without
// dsx-gpu at all. `dsx help` lists the commands and their flags.
package main
