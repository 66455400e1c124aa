//go:build unix

package loadtest

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used: server and load generator
// together, since the load test serves in process. Set against the wall time it shows how much
// of the machine the run actually got.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the one-minute load average ("" where /proc/loadavg is not there): the
// figures of a run on a busy machine are floors, and the report says so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b) + " ")[0]
}
