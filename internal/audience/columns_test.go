package audience

import (
	"math"
	"testing"
)

// TestNumColumnKeepsEveryNumber checks numbers a float32 cannot hold come back exactly too.
func TestNumColumnKeepsEveryNumber(t *testing.T) {
	var c numColumn
	nums := map[uint32]float64{1: 12000, 2: 0.1, 3: -7.25, 5: 1e300, 6: 16777217, 8: math.SmallestNonzeroFloat64}
	for id, v := range nums {
		c.set(id, v)
	}
	c.set(9, 0.3)
	c.unset(9)
	for id := uint32(0); id < 10; id++ {
		v, ok := c.value(id, c.vals[min(id, uint32(len(c.vals)-1))])
		want, set := nums[id]
		if ok != set || v != want {
			t.Errorf("customer %d: %v %v, want %v %v", id, v, ok, want, set)
		}
	}
}
