package ownership

import (
	"fmt"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Target is one staff member a rule hands customers to. Weight (default 1) is their share in
// the round robin; Cap (0: none) is the most customers they may own in all, counting the ones
// they already own.
type Target struct {
	StaffID int64 `json:"staff_id"`
	Weight  int   `json:"weight,omitempty"`
	Cap     int   `json:"cap,omitempty"`
}

// MaxTargets bounds the staff of one rule.
const MaxTargets = 200

// checkTargets validates targets; field names the list in errors (targets[2].weight).
func checkTargets(field string, targets []Target) error {
	if len(targets) == 0 {
		return &customer.FieldError{Field: field, Reason: "name at least one staff member"}
	}
	if len(targets) > MaxTargets {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf("at most %d staff members", MaxTargets)}
	}
	seen := map[int64]bool{}
	for i, t := range targets {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case t.StaffID <= 0:
			return &customer.FieldError{Field: f + ".staff_id", Reason: "want a staff id"}
		case seen[t.StaffID]:
			return &customer.FieldError{Field: f + ".staff_id", Reason: "named twice"}
		case t.Weight < 0 || t.Weight > 1000:
			return &customer.FieldError{Field: f + ".weight", Reason: "want 1 to 1000 (0: 1)"}
		case t.Cap < 0:
			return &customer.FieldError{Field: f + ".cap", Reason: "want 0 (no cap) or more"}
		}
		seen[t.StaffID] = true
	}
	return nil
}

// Distribute picks the staff member of each of n customers by smooth weighted round robin
// (as nginx balances upstreams: with weights 2 and 1 the order is A B A, A B A, …), passing
// over a target once it reaches its cap (owned: what each already owns). When the targets
// together cannot take n more, it refuses with a field error naming field and places nothing.
func Distribute(field string, targets []Target, owned map[int64]int64, n int) ([]int64, error) {
	room := make([]int64, len(targets)) // how many more each may take; -1: no cap
	total := int64(0)
	unbounded := false
	for i, t := range targets {
		room[i] = -1
		if t.Cap > 0 {
			room[i] = max(int64(t.Cap)-owned[t.StaffID], 0)
			total += room[i]
		} else {
			unbounded = true
		}
	}
	if !unbounded && total < int64(n) {
		return nil, &customer.FieldError{Field: field, Reason: fmt.Sprintf("the staff named can take %d more customers within their caps; %d asked", total, n)}
	}
	out := make([]int64, n)
	current := make([]int, len(targets))
	for k := range out {
		best, sum := -1, 0
		for i, t := range targets {
			if room[i] == 0 {
				continue
			}
			w := max(t.Weight, 1)
			current[i] += w
			sum += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= sum
		if room[best] > 0 {
			room[best]--
		}
		out[k] = targets[best].StaffID
	}
	return out, nil
}
