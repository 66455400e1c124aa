//go:build !unix

package loadtest

import "time"

// cpuTime is not measured on this platform.
func cpuTime() time.Duration { return 0 }

// loadAverage is not known on this platform.
func loadAverage() string { return "" }
