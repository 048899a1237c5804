//go:build !unix

package loadtest

import "time"

// ProcessCPU is not measured on this system: it is always 0.
func ProcessCPU() time.Duration { return 0 }
