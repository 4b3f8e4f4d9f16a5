//go:build !linux && !darwin

package sysblas

var defaultNames []string

const installHint = "no default library on this system"

func isAccelerate(string) bool { return false }
