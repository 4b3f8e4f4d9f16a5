package main

import (
	"fmt"
	"slices"
	"strings"

	"dsx/backend"
)

// The variants dsx bench times on a device come from its declaration
// (backend.Capabilities): each softmax-cross-entropy implementation it
// declares, chunked where it chunks batches, tiled where its fused
// implementation takes vocabulary tiles.

// xentVariant is the variant name of a softmax-cross-entropy
// implementation on a device: its declared name for Fused ("graph" on the
// CPU), else the implementation's own.
func xentVariant(caps backend.Capabilities, x backend.XentImpl) string {
	if x == backend.Fused && caps.FusedName != "" {
		return caps.FusedName
	}
	return x.String()
}

// knownVariants are the variant names: every softmax-cross-entropy
// implementation, the name a registered backend gives its Fused one
// (graph, the CPU's), and chunked.
func knownVariants() []string {
	var out []string
	for _, x := range backend.XentImpls() {
		out = append(out, x.String())
	}
	for _, n := range backend.Names() {
		if b, err := backend.Get(n); err == nil {
			if f := b.Capabilities().FusedName; f != "" && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return append(out, "chunked", "tiled")
}

// deviceVariants returns the variants to run on a device, from its
// declaration (Backend.Capabilities), and a note when one asked for is not
// what runs there. By default: every softmax-cross-entropy it declares, and
// chunked where it declares chunking and has memory of its own (a GPU's,
// which chunking bounds; not the CPU, whose rows say graph: the layer graph
// on Gorgonia's VM, whose softmax-cross-entropy is the fused op).
func deviceVariants(be backend.Backend, asked []string) (vs []string, note string) {
	caps, dev := be.Capabilities(), be.Name()
	if len(asked) == 0 {
		for _, x := range backend.XentImpls() {
			if caps.HasXent(x) {
				vs = append(vs, xentVariant(caps, x))
			}
		}
		if ds, err := be.Devices(); caps.Chunks && err == nil && len(ds) > 0 && ds[0].MemoryBytes > 0 {
			vs = append(vs, "chunked")
		}
		return vs, ""
	}
	var notes []string
	for _, v := range asked {
		switch x, err := backend.ParseXentImpl(v); {
		case err == nil && caps.HasXent(x) && xentVariant(caps, x) != v:
			notes = append(notes, fmt.Sprintf("%s runs variant %s as %s: its rows say %s", dev, v, xentVariant(caps, x), xentVariant(caps, x)))
			v = xentVariant(caps, x)
		case err == nil && !caps.HasXent(x):
			notes = append(notes, fmt.Sprintf("%s declares no %s softmax-cross-entropy: its row is skipped", dev, v))
		case v == "chunked" && !caps.Chunks:
			notes = append(notes, dev+" declares no chunked batches: its row is skipped")
		case err != nil && v != "chunked" && v != caps.FusedName:
			notes = append(notes, fmt.Sprintf("%s has no variant %s: its row is skipped", dev, v))
		}
		if !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return vs, strings.Join(notes, "; ")
}

// variantConfig sets cfg for a variant on a device, or returns why the
// device's declaration does not run it.
func variantConfig(cfg *backend.Config, caps backend.Capabilities, dev, variant string, o benchOpts) (skip string) {
	switch x, err := backend.ParseXentImpl(variant); {
	case variant == "chunked" || variant == "tiled":
		if !caps.Chunks {
			return dev + " declares no chunked batches"
		}
		if variant == "tiled" {
			if !caps.Xents[backend.Fused].VocabTiles {
				return dev + " declares no vocabulary tiles"
			}
			cfg.VocabTile = min(o.vocabTile, cfg.T)
		}
		cfg.ChunkRows, cfg.MemoryBudget = o.chunkRows, o.budget
		if o.chunkRows == 0 && cfg.Chunk(4) == cfg.B {
			// The logits fit the budget: chunk anyway (4 chunks), so that
			// the variant is measured on every shape.
			cfg.ChunkRows = max(1, cfg.B/4)
		}
	case variant == caps.FusedName:
		// The CPU's row (its FusedName, graph) runs the chunks its rule
		// picks, or those --chunk-rows/--memory-budget ask for (B rows or
		// more: the whole batch).
		cfg.Xent = backend.Fused
		cfg.ChunkRows, cfg.MemoryBudget = o.chunkRows, o.budget
	case err != nil || xentVariant(caps, x) != variant:
		return fmt.Sprintf("%s has no variant %s", dev, variant)
	case !caps.HasXent(x):
		return fmt.Sprintf("%s declares no %v softmax-cross-entropy", dev, x)
	default:
		cfg.Xent = x
	}
	if !caps.HasMatMode(cfg.MatMode) {
		return fmt.Sprintf("%s declares no matmul mode %v", dev, cfg.MatMode)
	}
	if !caps.HasStorage(cfg.Storage) {
		return fmt.Sprintf("%s declares no %v storage", dev, cfg.Storage)
	}
	return ""
}
