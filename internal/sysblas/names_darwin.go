package sysblas

import "strings"

// defaultNames are the libraries tried when DSX_BLAS is unset: Apple's
// Accelerate, which every macOS has (in the dyld shared cache, so not as a
// file on disk). NOT TESTED on a Mac: the project has none.
var defaultNames = []string{"/System/Library/Frameworks/Accelerate.framework/Accelerate"}

const installHint = "Accelerate should always load on macOS"

func isAccelerate(name string) bool { return strings.Contains(name, "Accelerate.framework") }

// installCommand is how to get the default library, for dsx devices.
func installCommand() string { return installHint }
