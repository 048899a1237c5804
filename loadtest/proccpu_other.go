//go:build !linux

package loadtest

import (
	"errors"
	"time"
)

// clockTick is the unit of /proc times on Linux.
const clockTick = 10 * time.Millisecond

var errNoProc = errors.New("loadtest: reading another process's CPU time needs Linux's /proc")

// ProcessCPUOf is not available without /proc.
func ProcessCPUOf(pid int) (time.Duration, error) { return 0, errNoProc }

// ServerCPUOf is not available without /proc.
func ServerCPUOf(pid int) (time.Duration, error) { return 0, errNoProc }
