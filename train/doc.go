// Package train is dsx's training loop as a library: a data set in, a
// model.Model out, the same loop `dsx train` runs.
//
// New fits the feature scaling on the training set (x' = (x − mean)/std,
// saved with the model), opens a backend Layer and draws W from the seed;
// Run steps it over shuffled mini-batches for the configured epochs,
// stops a run that diverges (a *DivergedError, before anything is saved),
// evaluates on the test set after every epoch, and calls the Options'
// hooks (per step, per epoch) so that a program can draw progress, log or
// checkpoint; Model returns W, b, the scaling and the class names, which
// model.Save writes atomically and `dsx eval` reads.
//
// Everything that changes the result is in Config; the same Config, data
// and backend give the same model bits. Options change nothing in the
// result.
//
// Data order: one random permutation of the training rows per epoch from
// a PCG generator seeded with Config.Seed (which also draws W at the
// start: N(0, 0.01²), b = 0); global batch k is rows perm[k·Batch,
// (k+1)·Batch). With a communicator of P ranks (Options.Comm, package
// dist) Batch stays the global batch: rank r steps on its share of each
// (dist.Share), the layer all-reduces the loss denominators and the
// gradients (backend.Config.Comm), and evaluation is split over the ranks
// and summed, so P ranks train the model one process trains, up to the
// order of summation.
//
// For a loop of one's own, Batcher gathers and scales rows into tensors,
// Targets turns int32 labels into the tensor Layer.Step takes, Evaluate
// measures a layer on a labelled set, and ModelOf turns a layer's
// parameters into a model.
package train
