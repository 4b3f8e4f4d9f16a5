// Package graph builds the classifier head as a Gorgonia expression graph:
//
//	logits = x·W + b          x: B×N, W: N×T, b: T
//	loss   = CrossEntropy(softmax(logits), targets)
//
// with the gradients dW, db and (optionally) dx obtained by Gorgonia's
// symbolic differentiation. Names: B batch rows, N input features, T classes;
// a d prefix means a gradient.
//
// Softmax and cross-entropy are one op of this package (XentOp, which
// SoftmaxCrossEntropy applies), not Gorgonia's SoftMax: tensor v0.9.24 takes
// every row's maximum from the first element of the whole tensor (so a row
// far from it overflows), Log(SoftMax(x)) rewrites the SoftMax node itself,
// and SoftMax and LogSoftMax of one input collapse into one node. The op subtracts each row's own maximum, works in
// log-sum-exp form, and its gradient is (p − y)·scale. It carries every option
// of torch.nn.CrossEntropyLoss, and logit soft-capping and z-loss (see
// LossOptions). The forward pass also reports a row whose logits are not
// finite (NonFiniteError), at no extra cost per element. Backends that run
// on other devices replace exactly this node with a fused kernel; the
// reference arithmetic for one row (RowLoss, RowGrad and the reduction's
// denominators, in the module's internal package rowmath) is what every
// device implements.
//
// What a model needs is here: Build and Spec for the whole head (Head: the
// graph and its named nodes), or SoftmaxCrossEntropy and BiasAdd as ops of
// one's own Gorgonia graph (see the examples); LossOptions and Reduction
// (ParseReduction); Want for the gradients; NonFiniteError and
// ErrNonFinite. The worker pool, the row arithmetic and the tensor
// converters the ops use are internal to the module. For backend writers:
// AsXent finds the op in a graph (XentOp, its gradient XentGradOp), and
// XentOp.UseBatchDenominators scales a chunk of rows as its whole batch.
//
// Only the gradients asked for are compiled: Head.TrainGraph returns the subgraph
// that reaches the requested outputs, so a layer that does not want dx never
// computes the B×N×T product behind it.
package graph
