// Package model holds a trained softmax classifier and stores it as a
// safetensors file, the format of Hugging Face's safetensors library, so
// that it can also be read with safetensors.numpy.load_file in Python.
//
// The classifier computes logits = x·W + b for a row of N features, with W
// an N×T row-major matrix and b a vector of T class biases; the predicted
// class is the arg-max of the logits, and probabilities are their softmax.
// Inputs are expected to be scaled first with the feature scaling learned
// on the training set, x' = (x − Mean[j]) / Std[j]: [Model.Logits] and
// [Model.Predict] do not scale; call [Model.ScaleInputs] before them.
//
// # File layout
//
// An 8-byte little-endian header length, a JSON header padded with spaces
// to a multiple of 8 bytes, then the raw little-endian tensor data, laid
// out contiguously in header order. Tensors:
//
//	"W"             F32 [N, T]
//	"b"             F32 [T]
//	"scaler.mean"   F32 [N]   (absent when the model has no scaling)
//	"scaler.std"    F32 [N]   (absent when the model has no scaling; divide by it)
//
// The "__metadata__" map holds "format": "dsx-softmax-v1" (the layout's
// version, [FormatVersion], after the "v"), "dsx_version": the dsx that
// wrote the file (package version's Short, such as "0.1.0+357753c1a2b3"),
// "classes": a JSON array of class names (when known), and the entries of
// [Model.Meta]. [Load] returns the first two as [Model.FileFormat] and
// [Model.DsxVersion]; it reads files without "dsx_version" (written before
// it was recorded) and refuses a later format version with an error
// wrapping [ErrNewerFormat] that names the dsx that wrote it.
//
// A training checkpoint ([CheckpointFormat], written by dsx train
// --checkpoint) is a model file with more in it: W and b possibly in F64,
// the trainer's tensors and metadata (names starting with
// [TrainerPrefixes]) and CRC-32C checksums. [Load] reads it as the model
// it holds, verifying the checksums, so that dsx eval and predict take a
// checkpoint as a model.
//
// [Save] writes atomically (temporary file, fsync, rename, fsync of the
// directory). [Load] validates strictly and accepts F64 tensors, which it
// converts to float32; every error names the file and the problem.
//
// The scaler is stored under names a numpy or scikit-learn user cannot
// misread: "scaler.std" is the standard deviation and is divided by. Files
// written before it hold "scaler.scale" = 1/std instead (multiplied in);
// [Load] still reads them, setting Std = 1/scale. The README has a
// ten-line numpy program that loads a model and predicts.
package model
