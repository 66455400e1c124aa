package analytics

import (
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// MaxPeriodDays bounds a period (ten years): longer asks are mistakes, not reports.
const MaxPeriodDays = 3660

// Period is the calendar days [From, To) in the workspace time zone.
type Period struct{ From, To segment.Day }

// ParsePeriod reads a period from YYYY-MM-DD dates; to is exclusive. An empty date takes its
// default (def). A malformed date, from ≥ to (a window of 0 days) or a period longer than
// MaxPeriodDays is a *customer.FieldError naming the field.
func ParsePeriod(from, to string, def Period) (Period, error) {
	p := def
	if from != "" {
		d, ok := segment.ParseDay(from)
		if !ok {
			return p, &customer.FieldError{Field: "from", Reason: "must be a date, YYYY-MM-DD"}
		}
		p.From = d
	}
	if to != "" {
		d, ok := segment.ParseDay(to)
		if !ok {
			return p, &customer.FieldError{Field: "to", Reason: "must be a date, YYYY-MM-DD"}
		}
		p.To = d
	}
	return p, p.Check()
}

// Check reports a period that is empty, backwards or too long.
func (p Period) Check() error {
	switch {
	case p.From >= p.To:
		return &customer.FieldError{Field: "to", Reason: "must be after from (to is exclusive: a period needs at least one day)"}
	case p.Days() > MaxPeriodDays:
		return &customer.FieldError{Field: "from", Reason: "a period may span at most 3660 days"}
	}
	return nil
}

// LastDays is the period of the n days ending with today (today included).
func LastDays(today segment.Day, n int) Period {
	return Period{From: today - segment.Day(n) + 1, To: today + 1}
}

// Days is the length of the period.
func (p Period) Days() int { return int(p.To - p.From) }

// Previous is the period of equal length just before p.
func (p Period) Previous() Period { return Period{From: p.From - segment.Day(p.Days()), To: p.From} }

// Bounds are the instants the period starts and ends (exclusive) in loc.
func (p Period) Bounds(loc *time.Location) (time.Time, time.Time) {
	return p.From.Start(loc), p.To.Start(loc)
}

// String is "YYYY-MM-DD..YYYY-MM-DD" with the end exclusive.
func (p Period) String() string { return dayString(p.From) + ".." + dayString(p.To) }

func dayString(d segment.Day) string { return d.Date().Format("2006-01-02") }
