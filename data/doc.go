// Package data loads and prepares data sets for a softmax classifier
// (dense layer, softmax, cross-entropy).
//
// A [Set] holds Rows examples of N float32 features each, row-major, with
// one int32 label per row in [0, Classes), or no labels (Y nil) for data
// to predict. [LoadFile] reads any format dsx knows, told by content:
// .npy arrays (numpy.save: float32, float64 or integer features, C order;
// labels from a second .npy or an IDX labels file), safetensors files (a
// features tensor and a labels tensor), MNIST-style IDX files ([LoadIDX],
// [LoadDir]) and CSV ([LoadCSV], [Load]), the last two gzipped or not.
// [WriteNPY] and [NPYWriter] write .npy arrays.
//
// Every file is opened once: [Open] returns an [Input] whose
// [Input.Features] (the header's feature count), [Input.Load] and
// [Input.TensorNames] all read through that one opening, a regular file at
// offsets and a stream (pipe, FIFO, /dev/stdin, <(...)) through one
// buffered reader whose first bytes are peeked, not consumed. CSV and IDX
// stream; .npy and safetensors, read by their size, must be regular files.
//
// Memory follows what a file holds, never what its header claims: every
// header (.npy, safetensors, IDX images and labels) is checked against the
// file's real size (for gzip, against the most deflate can expand it), the
// other file of a pair and the caller's feature count before anything is
// allocated for a body; [PeekFeatures] gives a file's feature count from its
// header alone. Shape products are checked for overflow, float32 data are
// read straight into the set's []float32 (in parallel parts for large
// files), other types converted through bounded buffers, and gzip bodies
// held as they arrive, so a file is never held twice. With [Options.Map],
// float32 features are the file's own pages, mapped copy-on-write on Linux:
// no copy at all, every value still checked, and [Set.Close] releases them.
// CSV lines may be of any length but no field longer than 4096 bytes.
// Classes inferred from labels are bounded by [MaxInferredClasses]. Each
// set's Stats record the rows read, the rows skipped and why (a CSV header
// line, blank lines), and the time taken.
//
// Features are kept raw (IDX pixels are 0..255). Feature scaling is learned
// on the training set with [FitScaler] and applied with [Scaler.Apply] (or,
// for a mapped set that should stay unwritten, to each gathered batch); the
// scaler's Mean and Std are meant to be saved alongside the model so that
// prediction scales inputs the same way.
//
// Training loops draw a permutation with [Set.Shuffle] and gather
// mini-batches into caller-owned buffers with [Set.Batch], which does not
// allocate. Loaders never panic on malformed input: every error names the
// file, the row, line or byte offset, and the problem.
package data
