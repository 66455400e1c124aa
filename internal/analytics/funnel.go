package analytics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Funnel limits.
const (
	MinFunnelSteps = 2
	MaxFunnelSteps = 10
	MaxWithinDays  = 365
)

// FunnelDefinition says how customers are counted through a funnel.
const FunnelDefinition = "a customer enters on their first step-1 event in the period; each later step counts when its event comes after the previous step's event (time order, ties by arrival) and no more than within_days × 24 h after the entering event; steps out of order or too late do not count. Times between steps are medians over the customers who reached the step, in hours."

// FunnelSpec is a funnel to count: an ordered sequence of event names.
type FunnelSpec struct {
	Steps      []string
	WithinDays int
	Period     Period
	// Split is a customer field to split by ("" none), one of GroupFields.
	Split string
}

// Check reports the first invalid input, naming its field.
func (f *FunnelSpec) Check() error {
	switch {
	case len(f.Steps) < MinFunnelSteps:
		return &customer.FieldError{Field: "steps", Reason: fmt.Sprintf("a funnel needs at least %d steps", MinFunnelSteps)}
	case len(f.Steps) > MaxFunnelSteps:
		return &customer.FieldError{Field: "steps", Reason: fmt.Sprintf("a funnel has at most %d steps", MaxFunnelSteps)}
	case f.WithinDays < 1 || f.WithinDays > MaxWithinDays:
		return &customer.FieldError{Field: "within_days", Reason: fmt.Sprintf("must be between 1 and %d", MaxWithinDays)}
	}
	for i, s := range f.Steps {
		if strings.TrimSpace(s) == "" {
			return &customer.FieldError{Field: fmt.Sprintf("steps[%d]", i), Reason: "an event name is required"}
		}
	}
	if err := f.Period.Check(); err != nil {
		return err
	}
	return CheckBy(f.Split, "split", GroupFields...)
}

// FunnelEvent is one event of a customer: its name and time (Unix ms).
type FunnelEvent struct {
	Name string
	At   int64
}

// FunnelStep is one step of a funnel answer.
type FunnelStep struct {
	Step      int    `json:"step"` // 1-based
	Name      string `json:"name"`
	Customers int64  `json:"customers"`
	// FromPrevious is customers ÷ the previous step's customers (1 for step 1 with anyone).
	FromPrevious float64 `json:"conversion_from_previous"`
	// FromFirst is customers ÷ step 1's customers.
	FromFirst float64 `json:"conversion_from_first"`
	// MedianHours is the median time from the previous step, in hours; null for step 1 or when
	// nobody reached the step.
	MedianHours *float64 `json:"median_hours_from_previous"`
}

// FunnelGroup is the funnel of one group (Key "" is everyone in scope).
type FunnelGroup struct {
	Key   string       `json:"key"`
	Steps []FunnelStep `json:"steps"`
}

// FunnelReport is a funnel answer.
type FunnelReport struct {
	Steps      []string      `json:"steps"`
	WithinDays int           `json:"within_days"`
	From       string        `json:"from"`
	To         string        `json:"to"`
	TimeZone   string        `json:"time_zone"`
	Split      string        `json:"split,omitempty"`
	Definition string        `json:"definition"`
	Total      FunnelGroup   `json:"total"`
	Groups     []FunnelGroup `json:"groups,omitempty"`
}

// funnelTally accumulates one group: how many reached each step and the gaps (ms) into it.
type funnelTally struct {
	reached []int64
	gaps    [][]float64
}

// FunnelCounter matches customers' event sequences against a funnel. Feed it one customer at a
// time with Add, then read Report.
type FunnelCounter struct {
	steps    []string
	from, to int64 // the entering window, Unix ms
	within   int64 // ms
	groups   map[string]*funnelTally
	total    funnelTally
}

// NewFunnelCounter prepares a counter for steps entered in [from, to).
func NewFunnelCounter(steps []string, withinDays int, from, to time.Time) *FunnelCounter {
	return &FunnelCounter{steps: steps, from: from.UnixMilli(), to: to.UnixMilli(), within: int64(withinDays) * 24 * 3600 * 1000, groups: map[string]*funnelTally{}}
}

func newTally(n int) *funnelTally {
	return &funnelTally{reached: make([]int64, n), gaps: make([][]float64, n)}
}

// Match returns the times (Unix ms) at which a customer reached each step, in order, from
// events sorted by time: the first step-1 event in the entering window, then greedily the
// earliest later event of each next step within the bound. Greedy is optimal: taking the
// earliest match for a step never leaves fewer events for the steps after it.
func (c *FunnelCounter) Match(events []FunnelEvent) []int64 {
	i := slices.IndexFunc(events, func(e FunnelEvent) bool { return e.Name == c.steps[0] && e.At >= c.from && e.At < c.to })
	if i < 0 {
		return nil
	}
	at := []int64{events[i].At}
	deadline := events[i].At + c.within
	for k := 1; k < len(c.steps); k++ {
		found := false
		for i++; i < len(events) && events[i].At <= deadline; i++ {
			if events[i].Name == c.steps[k] {
				at = append(at, events[i].At)
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return at
}

// Add counts one customer of group from their events, sorted by time.
func (c *FunnelCounter) Add(group string, events []FunnelEvent) {
	at := c.Match(events)
	if len(at) == 0 {
		return
	}
	if c.total.reached == nil {
		c.total = *newTally(len(c.steps))
	}
	g := c.groups[group]
	if g == nil {
		g = newTally(len(c.steps))
		c.groups[group] = g
	}
	for _, t := range []*funnelTally{&c.total, g} {
		for k := range at {
			t.reached[k]++
			if k > 0 {
				t.gaps[k] = append(t.gaps[k], float64(at[k]-at[k-1]))
			}
		}
	}
}

func (c *FunnelCounter) group(key string, t *funnelTally) FunnelGroup {
	if t == nil || t.reached == nil {
		t = newTally(len(c.steps))
	}
	out := FunnelGroup{Key: key, Steps: make([]FunnelStep, len(c.steps))}
	for k, name := range c.steps {
		s := FunnelStep{Step: k + 1, Name: name, Customers: t.reached[k], FromFirst: Ratio(t.reached[k], t.reached[0])}
		if k == 0 {
			s.FromPrevious = Ratio(t.reached[0], t.reached[0])
		} else {
			s.FromPrevious = Ratio(t.reached[k], t.reached[k-1])
			if m, ok := Median(t.gaps[k]); ok {
				h := round(m/3600000, 2)
				s.MedianHours = &h
			}
		}
		out.Steps[k] = s
	}
	return out
}

// Report is the counted funnel; with split, one group per value seen, sorted.
func (c *FunnelCounter) Report(f *FunnelSpec, loc *time.Location) *FunnelReport {
	rep := &FunnelReport{Steps: f.Steps, WithinDays: f.WithinDays, From: dayString(f.Period.From), To: dayString(f.Period.To), TimeZone: loc.String(), Split: f.Split, Definition: FunnelDefinition}
	rep.Total = c.group("", &c.total)
	if f.Split != "" {
		rep.Groups = []FunnelGroup{}
		for _, k := range slices.Sorted(maps.Keys(c.groups)) {
			rep.Groups = append(rep.Groups, c.group(k, c.groups[k]))
		}
	}
	return rep
}

// Funnel counts f over the customers in scope.
func Funnel(ctx context.Context, src Source, sc Scope, f *FunnelSpec, loc *time.Location) (*FunnelReport, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	sc.By = f.Split
	from, to := f.Period.Bounds(loc)
	until := to.Add(time.Duration(f.WithinDays)*24*time.Hour + time.Millisecond) // the bound is inclusive
	counter := NewFunnelCounter(f.Steps, f.WithinDays, from, to)
	var (
		cur    int64 = -1
		group  string
		events []FunnelEvent
	)
	names := slices.Compact(slices.Sorted(slices.Values(f.Steps)))
	err := src.FunnelEvents(ctx, sc, names, f.Steps[0], from, to, until, func(id int64, g string, ev FunnelEvent) error {
		if id != cur {
			if cur >= 0 {
				counter.Add(group, events)
			}
			cur, group, events = id, g, events[:0]
		}
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("funnel: %w", err)
	}
	if cur >= 0 {
		counter.Add(group, events)
	}
	return counter.Report(f, loc), nil
}
