// Package data loads and prepares labelled data sets for a softmax
// classifier (dense layer, softmax, cross-entropy).
//
// A [Set] holds Rows examples of N float32 features each, row-major, with
// one int32 label per row in [0, Classes). Sets come from MNIST-style IDX
// files ([LoadIDX], [LoadDir]) or from CSV files ([LoadCSV], [Load]); all
// loaders accept gzip-compressed input, detected by the gzip magic bytes
// rather than by the file name.
//
// Features are kept raw (IDX pixels are 0..255). Feature scaling is learned
// on the training set with [FitScaler] and applied with [Scaler.Apply]; the
// scaler's Mean and Scale are meant to be saved alongside the model so that
// prediction scales inputs the same way.
//
// Training loops draw a permutation with [Set.Shuffle] and gather
// mini-batches into caller-owned buffers with [Set.Batch], which does not
// allocate. Loaders never panic on malformed input: every error names the
// file, the row, line or byte offset, and the problem.
package data
