package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"dsx/internal/quote"
)

// maxPeersFile bounds a --peers file: records of a few hundred bytes
// each, so 64 MiB is far more than any benchmark writes.
const maxPeersFile = 64 << 20

// readPeers reads a --peers file of benchmark records, at most
// maxPeersFile bytes (a FIFO or /dev/urandom given by mistake stops
// there), with a JSON error of bounded length.
func readPeers(path string) ([]benchRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--peers: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPeersFile+1))
	if err != nil {
		return nil, fmt.Errorf("--peers: %s: %w", path, err)
	}
	if len(b) > maxPeersFile {
		return nil, fmt.Errorf("--peers: %s: more than %d MiB: not a file of benchmark records", path, maxPeersFile>>20)
	}
	var rs []benchRecord
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("--peers: %s: %w", path, quote.Error(err))
	}
	return rs, nil
}
