package channel

// Receiver is a staff member who receives the contacts of a code, with a daily capacity (0:
// no limit).
type Receiver struct {
	StaffID  int64 `json:"staff_id"`
	DailyCap int   `json:"daily_cap,omitempty"`
}

// Pick chooses who receives the next contact: round-robin over receivers in their order,
// starting after last (the one who received the previous contact), skipping those whose
// adds today (today, by staff id) reached their daily capacity. When everyone is full it
// answers fallback (0 when there is none) and full true.
func Pick(receivers []Receiver, today map[int64]int, last, fallback int64) (staffID int64, full bool) {
	n := len(receivers)
	if n == 0 {
		return fallback, true
	}
	start := 0
	for i, r := range receivers {
		if r.StaffID == last {
			start = i + 1
			break
		}
	}
	for k := 0; k < n; k++ {
		r := receivers[(start+k)%n]
		if r.DailyCap <= 0 || today[r.StaffID] < r.DailyCap {
			return r.StaffID, false
		}
	}
	return fallback, true
}
