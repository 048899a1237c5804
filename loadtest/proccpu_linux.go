package loadtest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's times, USER_HZ, which
// Linux fixes at 100 for user space whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

// statTimes returns fields utime, stime, cutime, cstime (14-17) and
// ppid (4) of /proc/<pid>/stat.
func statTimes(pid int) (times [4]time.Duration, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return times, 0, err
	}
	times, ppid, err = parseStat(string(b))
	if err != nil {
		return times, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return times, ppid, nil
}

// parseStat reads the fields statTimes returns from a /proc/<pid>/stat
// line.
func parseStat(s string) (times [4]time.Duration, ppid int, err error) {
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses: count fields from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return times, 0, errors.New("no command name")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return times, 0, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return times, 0, fmt.Errorf("ppid: %w", err)
	}
	for k := range times {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(clockTick) {
			return times, 0, fmt.Errorf("field %d: %q is not a tick count", 14+k, f[11+k])
		}
		times[k] = time.Duration(n) * clockTick
	}
	return times, ppid, nil
}

// ProcessCPUOf is the CPU time (user and system) process pid has used,
// from /proc/<pid>/stat, in 10 ms ticks.
func ProcessCPUOf(pid int) (time.Duration, error) {
	t, _, err := statTimes(pid)
	return t[0] + t[1], err
}

// ServerCPUOf is the CPU time of a server that forks a process per
// connection, as PostgreSQL's postmaster does: pid's own, that of its
// children now running, and that of the children it has reaped.
func ServerCPUOf(pid int) (time.Duration, error) {
	t, _, err := statTimes(pid)
	if err != nil {
		return 0, err
	}
	total := t[0] + t[1] + t[2] + t[3]
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	for _, s := range stats {
		child, err := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		if err != nil || child == pid {
			continue
		}
		ct, ppid, err := statTimes(child)
		if err != nil || ppid != pid {
			continue // gone since the listing, or not a child
		}
		total += ct[0] + ct[1]
	}
	return total, nil
}
