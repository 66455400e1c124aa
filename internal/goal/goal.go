// Package goal holds objectives and key results (OKR) bound to metrics: an objective has a
// period and owners; each key result names a metric (internal/analytics), optionally a segment,
// and a target. Progress is computed from the data, never typed in, and a GMV key result breaks
// down into the levers behind it: GMV = buyers × orders per buyer × average order value, with
// buyers and GMV split into new buyers (first paid order in the period) and returning ones.
package goal

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Objective is what a team sets out to do in a period, measured by its key results.
type Objective struct {
	ID           int64       `json:"id"`
	Name         string      `json:"name"`
	Description  string      `json:"description"`
	From         string      `json:"from"` // YYYY-MM-DD, first day
	To           string      `json:"to"`   // YYYY-MM-DD, exclusive
	OwnerStaffID int64       `json:"owner_staff_id,omitempty"`
	DepartmentID int64       `json:"department_id,omitempty"`
	KeyResults   []KeyResult `json:"key_results"`
	CreatedBy    int64       `json:"created_by,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
}

// KeyResult binds a metric, over the objective's period and an optional segment, to a target.
type KeyResult struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	Metric       string  `json:"metric"`               // an analytics metric key, e.g. gmv_minor
	SegmentID    int64   `json:"segment_id,omitempty"` // 0: every customer in the viewer's scope
	Target       float64 `json:"target"`               // in the metric's unit (minor units for money, 0–1 for ratios)
	Direction    string  `json:"direction"`            // at_least (default) or at_most
	OwnerStaffID int64   `json:"owner_staff_id,omitempty"`
	DepartmentID int64   `json:"department_id,omitempty"`
}

// Directions of a target.
const (
	AtLeast = "at_least" // reach or exceed the target (GMV, buyers, repurchase rate)
	AtMost  = "at_most"  // stay at or under it (days to first order)
)

// Limits of a definition.
const (
	MaxKeyResults = 10
	maxName       = 120
	maxText       = 2000
)

// Period is the objective's period.
func (o *Objective) Period() (analytics.Period, error) {
	return analytics.ParsePeriod(o.From, o.To, analytics.Period{})
}

// Validate checks an objective, naming the field of the first problem.
func (o *Objective) Validate() error {
	o.Name = strings.TrimSpace(o.Name)
	switch {
	case o.Name == "":
		return fieldErr("name", "is required")
	case len([]rune(o.Name)) > maxName:
		return fieldErr("name", fmt.Sprintf("at most %d characters", maxName))
	case len([]rune(o.Description)) > maxText:
		return fieldErr("description", fmt.Sprintf("at most %d characters", maxText))
	}
	if _, ok := segment.ParseDay(o.From); !ok {
		return fieldErr("from", "must be a date, YYYY-MM-DD")
	}
	if _, ok := segment.ParseDay(o.To); !ok {
		return fieldErr("to", "must be a date, YYYY-MM-DD (exclusive)")
	}
	if _, err := o.Period(); err != nil {
		return err
	}
	if len(o.KeyResults) == 0 {
		return fieldErr("key_results", "add at least one key result")
	}
	if len(o.KeyResults) > MaxKeyResults {
		return fieldErr("key_results", fmt.Sprintf("at most %d", MaxKeyResults))
	}
	for i := range o.KeyResults {
		if err := o.KeyResults[i].validate(fmt.Sprintf("key_results[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (k *KeyResult) validate(path string) error {
	k.Name = strings.TrimSpace(k.Name)
	d, ok := definition(k.Metric)
	switch {
	case k.Name == "":
		return fieldErr(path+".name", "is required")
	case len([]rune(k.Name)) > maxName:
		return fieldErr(path+".name", fmt.Sprintf("at most %d characters", maxName))
	case !ok:
		return fieldErr(path+".metric", "must be one of "+strings.Join(MetricKeys(), ", "))
	case math.IsNaN(k.Target) || math.IsInf(k.Target, 0) || k.Target <= 0:
		return fieldErr(path+".target", "must be a number above 0")
	case d.Unit == "ratio" && k.Target > 1:
		return fieldErr(path+".target", "a rate is a share between 0 and 1 (0.25 is 25%)")
	case k.SegmentID < 0:
		return fieldErr(path+".segment_id", "must be a segment id")
	}
	switch k.Direction {
	case "":
		k.Direction = AtLeast
	case AtLeast, AtMost:
	default:
		return fieldErr(path+".direction", "want at_least or at_most")
	}
	return nil
}

// MetricKeys lists the metrics a key result may name.
func MetricKeys() []string {
	out := make([]string, len(analytics.Definitions))
	for i, d := range analytics.Definitions {
		out[i] = d.Key
	}
	return out
}

func definition(key string) (analytics.Definition, bool) {
	for _, d := range analytics.Definitions {
		if d.Key == key {
			return d, true
		}
	}
	return analytics.Definition{}, false
}

func fieldErr(field, reason string) error {
	return &customer.FieldError{Field: field, Reason: reason}
}

// Value is a metric's value from counts; nil when undefined.
func Value(metric string, c *analytics.Counts) *float64 {
	figs := analytics.Figures(c)
	for i, d := range analytics.Definitions {
		if d.Key == metric {
			return figs[i]
		}
	}
	return nil
}

// Status of a key result.
const (
	StatusNotStarted = "not_started" // the period has not begun
	StatusAchieved   = "achieved"    // the target is met (at_most: met at the end)
	StatusOnTrack    = "on_track"    // progress keeps pace with the time elapsed
	StatusBehind     = "behind"      // progress lags the time elapsed
	StatusMissed     = "missed"      // the period ended short of the target
)

// Progress is a key result measured.
type Progress struct {
	KeyResultID int64    `json:"key_result_id"`
	Metric      string   `json:"metric"`
	Unit        string   `json:"unit"`
	Current     *float64 `json:"current"` // the metric over the period so far
	Target      float64  `json:"target"`
	Progress    float64  `json:"progress"` // 0–1 (capped), how far toward the target
	Elapsed     float64  `json:"elapsed"`  // 0–1, the share of the period gone by
	// Projected is a count or sum extrapolated to the whole period at the pace so far (nil for
	// rates, averages and medians, which do not add up over time).
	Projected  *float64 `json:"projected,omitempty"`
	Status     string   `json:"status"`
	Definition string   `json:"definition"`
	Tree       *Tree    `json:"tree,omitempty"` // GMV key results: the levers
}

// additive metrics grow through the period; the others are rates and averages.
var additive = map[string]bool{
	analytics.MetricNewCustomers: true, analytics.MetricActiveCustomers: true, analytics.MetricBuyers: true,
	analytics.MetricFirstTimeBuyers: true, analytics.MetricRepeatBuyers: true, analytics.MetricOrders: true,
	analytics.MetricGMV: true, analytics.MetricConverted: true,
}

// Elapsed is the share of the period [from, to) gone by at now, 0 to 1.
func Elapsed(from, to, now time.Time) float64 {
	switch {
	case !now.After(from):
		return 0
	case !now.Before(to):
		return 1
	}
	return float64(now.Sub(from)) / float64(to.Sub(from))
}

// Measure computes a key result's progress from the counts of the period so far (from the
// period's start to now, or to its end once over) at elapsed share of the period.
func Measure(k *KeyResult, c *analytics.Counts, elapsed float64) Progress {
	d, _ := definition(k.Metric)
	p := Progress{KeyResultID: k.ID, Metric: k.Metric, Unit: d.Unit, Target: k.Target, Elapsed: round(elapsed, 4), Definition: d.Definition}
	p.Current = Value(k.Metric, c)
	if elapsed == 0 {
		p.Status = StatusNotStarted
		return p
	}
	cur := 0.0
	if p.Current != nil {
		cur = *p.Current
	}
	if additive[k.Metric] && elapsed > 0 {
		proj := round(cur/elapsed, 2)
		p.Projected = &proj
	}
	met := false
	switch k.Direction {
	case AtMost:
		met = p.Current != nil && cur <= k.Target
		switch {
		case met:
			p.Progress = 1
		case cur > 0:
			p.Progress = k.Target / cur
		}
	default:
		met = cur >= k.Target
		p.Progress = math.Min(cur/k.Target, 1)
	}
	p.Progress = round(p.Progress, 4)
	grows := additive[k.Metric] && k.Direction != AtMost
	pace := func(ok bool) string {
		if ok {
			return StatusOnTrack
		}
		return StatusBehind
	}
	switch {
	case grows && met: // a count or sum that reached its target stays reached
		p.Status = StatusAchieved
	case elapsed >= 1 && met:
		p.Status = StatusAchieved
	case elapsed >= 1:
		p.Status = StatusMissed
	case grows: // on track while it keeps pace with time
		p.Status = pace(p.Progress >= elapsed)
	default: // a rate, average or ceiling is on track while it is at target now
		p.Status = pace(met)
	}
	return p
}

func round(x float64, places int) float64 {
	f := math.Pow10(places)
	return math.Round(x*f) / f
}
