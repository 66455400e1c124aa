package analytics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Grain is the length of a cohort bucket.
type Grain string

// The grains: calendar months, and weeks from Monday.
const (
	Month Grain = "month"
	Week  Grain = "week"
)

// CohortMetric is what a cohort cell counts.
type CohortMetric string

// The cohort metrics.
const (
	// Retention counts the cohort's customers with any event in bucket k after acquisition.
	Retention CohortMetric = "retention"
	// Repurchase counts the cohort's customers with a paid order paid in bucket k.
	Repurchase CohortMetric = "repurchase"
)

// CohortDefinitions say what each metric's cells mean.
var CohortDefinitions = map[CohortMetric]string{
	Retention:  "share of the cohort (customers created in the bucket, not merged away) with at least one event in the k-th bucket after it (k = 0 is the acquisition bucket itself)",
	Repurchase: "share of the cohort with at least one paid order (not fully refunded; zero amounts count) paid in the k-th bucket after it (k = 0 is the acquisition bucket itself)",
}

// MaxCohortBuckets bounds a cohort table (five years of months, two of weeks).
const MaxCohortBuckets = 104

// CohortCount is one tally from the store: with Bucket −1 the size of a cohort, otherwise the
// cohort's customers active (or buying) in bucket Bucket. Buckets index the edges passed in.
type CohortCount struct {
	Group     string
	Cohort    int
	Bucket    int
	Customers int64
}

// ParseGrain reads a grain ("" is a month).
func ParseGrain(s string) (Grain, error) {
	switch Grain(s) {
	case "", Month:
		return Month, nil
	case Week:
		return Week, nil
	}
	return "", &customer.FieldError{Field: "period", Reason: "must be month or week"}
}

// ParseCohortMetric reads a cohort metric ("" is retention).
func ParseCohortMetric(s string) (CohortMetric, error) {
	switch CohortMetric(s) {
	case "", Retention:
		return Retention, nil
	case Repurchase:
		return Repurchase, nil
	}
	return "", &customer.FieldError{Field: "metric", Reason: "must be retention or repurchase"}
}

// BucketStart is the first day of the bucket holding d.
func (g Grain) BucketStart(d segment.Day) segment.Day {
	if g == Week {
		return d - segment.Day((int(d.Date().Weekday())+6)%7)
	}
	t := d.Date()
	return segment.DayOfDate(t.Year(), t.Month(), 1)
}

// next is the first day of the bucket after the one starting on start.
func (g Grain) next(start segment.Day) segment.Day {
	if g == Week {
		return start + 7
	}
	t := start.Date().AddDate(0, 1, 0)
	return segment.DayOfDate(t.Year(), t.Month(), 1)
}

// Edges are the bucket starts covering p (rounded out to whole buckets) followed by the end of
// the last bucket: n buckets have n+1 edges.
func (g Grain) Edges(p Period) []segment.Day {
	edges := []segment.Day{g.BucketStart(p.From)}
	for edges[len(edges)-1] < p.To {
		edges = append(edges, g.next(edges[len(edges)-1]))
	}
	return edges
}

// Label names the bucket starting on d: "2024-03" for a month, the Monday's date for a week.
func (g Grain) Label(d segment.Day) string {
	if g == Week {
		return dayString(d)
	}
	return d.Date().Format("2006-01")
}

// CohortCell is one cell of the triangle: the cohort's customers counted k buckets after
// acquisition, and their share of the cohort.
type CohortCell struct {
	K         int     `json:"k"`
	Customers int64   `json:"customers"`
	Rate      float64 `json:"rate"`
}

// CohortRow is one cohort: its size and a cell per bucket observed so far.
type CohortRow struct {
	Group  string       `json:"group"`
	Cohort string       `json:"cohort"`
	Size   int64        `json:"size"`
	Cells  []CohortCell `json:"cells"`
}

// CohortReport is a cohort answer.
type CohortReport struct {
	Period     Grain        `json:"period"`
	Metric     CohortMetric `json:"metric"`
	From       string       `json:"from"`  // the first cohort's first day
	To         string       `json:"to"`    // the day after the last cohort (exclusive)
	Until      string       `json:"until"` // the end of the last bucket followed (exclusive)
	TimeZone   string       `json:"time_zone"`
	By         string       `json:"by,omitempty"`
	Definition string       `json:"definition"`
	Buckets    int          `json:"buckets"` // the widest row's cells: k runs 0..buckets−1
	Rows       []CohortRow  `json:"rows"`
}

// Cohorts builds the triangle of cohorts acquired in p (rounded out to whole buckets), each
// followed up to the bucket holding today: row i has a cell for every bucket from its own to
// that one.
func Cohorts(ctx context.Context, src Source, sc Scope, g Grain, m CohortMetric, p Period, today segment.Day, loc *time.Location) (*CohortReport, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := CheckBy(sc.By, "by", GroupFields...); err != nil {
		return nil, err
	}
	cohorts := len(g.Edges(p)) - 1
	days := g.Edges(Period{From: p.From, To: max(p.To, today+1)})
	if len(days)-1 > MaxCohortBuckets {
		return nil, &customer.FieldError{Field: "from", Reason: fmt.Sprintf("a cohort table follows at most %d %ss", MaxCohortBuckets, g)}
	}
	edges := make([]time.Time, len(days))
	for i, d := range days {
		edges[i] = d.Start(loc)
	}
	counts, err := src.CohortCounts(ctx, sc, edges, cohorts, m)
	if err != nil {
		return nil, fmt.Errorf("cohorts: %w", err)
	}
	// The last bucket anything can have been observed in.
	last := len(days) - 2
	for last >= 0 && days[last] > today {
		last--
	}
	return buildCohorts(counts, days, cohorts, last, g, m, sc.By, loc), nil
}

func buildCohorts(counts []CohortCount, days []segment.Day, n, last int, g Grain, m CohortMetric, by string, loc *time.Location) *CohortReport {
	type key struct {
		group  string
		cohort int
	}
	sizes := map[key]int64{}
	cells := map[key]map[int]int64{}
	groups := map[string]bool{"": by == ""}
	for _, c := range counts {
		k := key{c.Group, c.Cohort}
		groups[c.Group] = true
		if c.Bucket < 0 {
			sizes[k] += c.Customers
			continue
		}
		if cells[k] == nil {
			cells[k] = map[int]int64{}
		}
		cells[k][c.Bucket-c.Cohort] += c.Customers
	}
	rep := &CohortReport{Period: g, Metric: m, From: dayString(days[0]), To: dayString(days[n]), Until: dayString(days[len(days)-1]), TimeZone: loc.String(), By: by, Definition: CohortDefinitions[m], Rows: []CohortRow{}}
	for _, grp := range slices.Sorted(maps.Keys(groups)) {
		if !groups[grp] {
			continue
		}
		for i := range n {
			k := key{grp, i}
			row := CohortRow{Group: grp, Cohort: g.Label(days[i]), Size: sizes[k], Cells: []CohortCell{}}
			for kk := 0; i+kk <= last; kk++ {
				v := cells[k][kk]
				row.Cells = append(row.Cells, CohortCell{K: kk, Customers: v, Rate: Ratio(v, row.Size)})
			}
			rep.Buckets = max(rep.Buckets, len(row.Cells))
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}
