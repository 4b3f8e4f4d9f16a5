//go:build !nosysblas

package sysblas

const nosysblas = false
