package model

import (
	"cmp"
	"slices"
	"time"
)

// Time in stage is read from the history of entries and exits (model_events): a stay runs from
// an entry to the exit that ends it, or to now while the customer is still in the stage. A
// customer's first placement is when siyu first computed the model for them, so the first
// stay of customers who were already in a stage then is counted from that run (a lower
// bound).

// StageEvent is one entry into or exit from a stage, as kept in the history.
type StageEvent struct {
	Kind  string // "entered" or "exited"
	Stage Stage
	At    time.Time
}

// Kinds of StageEvent.
const (
	Entered = "entered"
	Exited  = "exited"
)

// StageTime is the time one customer has spent in one stage, over all its stays.
type StageTime struct {
	Stage Stage   `json:"stage"`
	Days  float64 `json:"days"`
	Stays int     `json:"stays"`
	// Current is set for the stage the customer is in now.
	Current bool `json:"current"`
}

// StageTimes sums a customer's history (oldest first) up per stage, in the order the stages
// were first entered; the open stay runs to now.
func StageTimes(hist []StageEvent, now time.Time) []StageTime {
	var out []StageTime
	index := map[Stage]int{}
	var open *StageEvent
	add := func(st Stage, d time.Duration, current bool) {
		i, ok := index[st]
		if !ok {
			i = len(out)
			index[st] = i
			out = append(out, StageTime{Stage: st})
		}
		out[i].Days += d.Hours() / 24
		out[i].Stays++
		out[i].Current = out[i].Current || current
	}
	for k := range hist {
		e := &hist[k]
		switch e.Kind {
		case Entered:
			if open != nil { // an entry without the exit before it: close the stay there
				add(open.Stage, e.At.Sub(open.At), false)
			}
			open = e
		case Exited:
			if open != nil && open.Stage == e.Stage {
				add(open.Stage, e.At.Sub(open.At), false)
				open = nil
			}
		}
	}
	if open != nil {
		add(open.Stage, max(0, now.Sub(open.At)), true)
	}
	return out
}

// DurationStats summarises stays in one stage.
type DurationStats struct {
	Count      int64   `json:"count"`
	AvgDays    float64 `json:"avg_days"`
	MedianDays float64 `json:"median_days"`
}

// StageDurations is one stage's stays: those that ended (the customer left the stage) and
// those still going on, counted to now.
type StageDurations struct {
	Stage   Stage         `json:"stage"`
	Left    DurationStats `json:"left"`
	Current DurationStats `json:"current"`
}

// DurationAccumulator reads a model's whole history, customer by customer (each customer's
// events together, oldest first), and sums the stays of every stage up.
type DurationAccumulator struct {
	now      time.Time
	customer int64
	open     *StageEvent
	left     map[Stage][]int64 // milliseconds of each finished stay
	current  map[Stage][]int64
}

// NewDurationAccumulator starts an accumulation; stays still going on run to now.
func NewDurationAccumulator(now time.Time) *DurationAccumulator {
	return &DurationAccumulator{now: now, customer: -1, left: map[Stage][]int64{}, current: map[Stage][]int64{}}
}

// Add takes the next event of the history.
func (a *DurationAccumulator) Add(customerID int64, e StageEvent) {
	if customerID != a.customer {
		a.flush()
		a.customer = customerID
	}
	switch e.Kind {
	case Entered:
		if a.open != nil {
			a.left[a.open.Stage] = append(a.left[a.open.Stage], e.At.Sub(a.open.At).Milliseconds())
		}
		a.open = &e
	case Exited:
		if a.open != nil && a.open.Stage == e.Stage {
			a.left[e.Stage] = append(a.left[e.Stage], e.At.Sub(a.open.At).Milliseconds())
			a.open = nil
		}
	}
}

func (a *DurationAccumulator) flush() {
	if a.open != nil {
		a.current[a.open.Stage] = append(a.current[a.open.Stage], max(0, a.now.Sub(a.open.At).Milliseconds()))
		a.open = nil
	}
}

// Result returns the statistics of every stage in order (stages listed first, in their order,
// then any other stage found in the history, by name).
func (a *DurationAccumulator) Result(order []Stage) []StageDurations {
	a.flush()
	a.customer = -1
	seen := map[Stage]bool{}
	var stages []Stage
	for _, st := range order {
		if !seen[st] {
			seen[st] = true
			stages = append(stages, st)
		}
	}
	var extra []Stage
	for _, m := range []map[Stage][]int64{a.left, a.current} {
		for st := range m {
			if !seen[st] {
				seen[st] = true
				extra = append(extra, st)
			}
		}
	}
	slices.Sort(extra)
	stages = append(stages, extra...)
	out := make([]StageDurations, len(stages))
	for i, st := range stages {
		out[i] = StageDurations{Stage: st, Left: summarize(a.left[st]), Current: summarize(a.current[st])}
	}
	return out
}

// summarize is the count, mean and median (the mean of the middle two for an even count) of
// durations in milliseconds, in days.
func summarize(ms []int64) DurationStats {
	if len(ms) == 0 {
		return DurationStats{}
	}
	slices.Sort(ms)
	var sum float64
	for _, x := range ms {
		sum += float64(x)
	}
	const day = float64(24 * time.Hour / time.Millisecond)
	n := len(ms)
	med := float64(ms[n/2])
	if n%2 == 0 {
		med = (float64(ms[n/2-1]) + float64(ms[n/2])) / 2
	}
	return DurationStats{Count: int64(n), AvgDays: round2(sum / float64(n) / day), MedianDays: round2(med / day)}
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// StageFlow counts customers (or moves) from one stage to another. "" is no stage.
type StageFlow struct {
	From  Stage `json:"from"`
	To    Stage `json:"to"`
	Count int64 `json:"count"`
}

// FlowAccumulator reads a model's whole history, customer by customer (each customer's events
// together, oldest first), and counts both the transition matrix of a period — each
// customer's stage just before From against their stage just before To — and the moves
// that happened in [From, To): an exit and an entry at one instant are one move, an entry
// alone a first placement ("" → stage), an exit alone a departure (stage → "").
type FlowAccumulator struct {
	from, to         time.Time
	customer         int64
	stage            Stage // the customer's stage after the events read so far
	atFrom, atTo     Stage
	seenFrom, seenTo bool
	pending          *StageEvent // an exit waiting for the entry at the same instant
	matrix, moves    map[[2]Stage]int64
}

// NewFlowAccumulator counts flows over [from, to).
func NewFlowAccumulator(from, to time.Time) *FlowAccumulator {
	return &FlowAccumulator{from: from, to: to, customer: -1, matrix: map[[2]Stage]int64{}, moves: map[[2]Stage]int64{}}
}

// Add takes the next event of the history.
func (a *FlowAccumulator) Add(customerID int64, e StageEvent) {
	if customerID != a.customer {
		a.flush()
		a.customer = customerID
	}
	if !a.seenFrom && !e.At.Before(a.from) {
		a.atFrom, a.seenFrom = a.stage, true
	}
	if !a.seenTo && !e.At.Before(a.to) {
		a.atTo, a.seenTo = a.stage, true
	}
	switch e.Kind {
	case Entered:
		if a.pending != nil && a.pending.At.Equal(e.At) {
			a.move(a.pending.Stage, e.Stage, e.At)
		} else {
			a.settle()
			a.move("", e.Stage, e.At)
		}
		a.pending = nil
		a.stage = e.Stage
	case Exited:
		a.settle()
		a.pending = &e
		a.stage = ""
	}
}

func (a *FlowAccumulator) move(from, to Stage, at time.Time) {
	if !at.Before(a.from) && at.Before(a.to) {
		a.moves[[2]Stage{from, to}]++
	}
}

// settle counts a pending exit that no entry followed as a departure.
func (a *FlowAccumulator) settle() {
	if a.pending != nil {
		a.move(a.pending.Stage, "", a.pending.At)
		a.pending = nil
	}
}

func (a *FlowAccumulator) flush() {
	if a.customer < 0 {
		return
	}
	a.settle()
	if !a.seenFrom {
		a.atFrom = a.stage
	}
	if !a.seenTo {
		a.atTo = a.stage
	}
	if a.atFrom != "" || a.atTo != "" {
		a.matrix[[2]Stage{a.atFrom, a.atTo}]++
	}
	a.stage, a.atFrom, a.atTo, a.seenFrom, a.seenTo = "", "", "", false, false
}

// Result returns the matrix and the moves, each largest first (then by stage names).
func (a *FlowAccumulator) Result() (matrix, moves []StageFlow) {
	a.flush()
	a.customer = -1
	return sortedFlows(a.matrix), sortedFlows(a.moves)
}

func sortedFlows(m map[[2]Stage]int64) []StageFlow {
	out := make([]StageFlow, 0, len(m))
	for k, n := range m {
		out = append(out, StageFlow{From: k[0], To: k[1], Count: n})
	}
	slices.SortFunc(out, func(x, y StageFlow) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return out
}
