//go:build unix

package loadtest

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user and system) this process has used so
// far. A benchmark that runs the load and the server in one process takes
// it before and after a run: on a machine the load saturates, the rates
// are bounded by CPU, and CPU per message shows whether a change made the
// server cheaper even when the rates are noisy.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
