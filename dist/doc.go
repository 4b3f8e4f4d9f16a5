// Package dist is the collectives that data-parallel training needs: rank,
// size, local rank, all-reduce (sum) of float32 and float64 buffers,
// broadcast, barrier and abort, on existing engines (MPI, loaded at run
// time; NCCL for device buffers in the gpu build), never a transport of
// its own.
//
// A process started alone gets Local, a world of one, in which every
// collective is the identity: code written for P ranks runs unchanged on
// one.
//
// Training with P ranks (package train) keeps one model: each rank computes
// the gradients of its share of every global batch, the layer (through
// backend.Config.Comm) all-reduces the batch's loss denominators before
// anything divides by them and dW and db before the optimizer update, and
// every rank applies the same update, so the parameters stay identical
// without a broadcast.
package dist
