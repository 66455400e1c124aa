package analytics

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Scope selects the customers a report covers and how it is split.
type Scope struct {
	// Owner is the data scope: 0 every customer, a staff id only the customers that staff
	// member owns (a sales person's own), a negative value nobody.
	Owner int64
	// OwnersOnly, when set, keeps only customers owned by one of Owners (none: nobody): the
	// data scope of a department, on top of Owner.
	OwnersOnly bool
	Owners     []int64
	// Customers, when not nil, keeps only these customers (a segment's members).
	Customers []int64
	// By splits the report by a customer field: "" (no split) or one of GroupFields.
	By string
}

// GroupFields are the customer fields a report may be split by. An owner group is the owner's
// staff id ("" for customers with no owner).
var GroupFields = []string{"source", "owner", "gender", "region"}

// CheckBy reports a split field that is not one of allowed; field names the input.
func CheckBy(by, field string, allowed ...string) error {
	if by == "" || slices.Contains(allowed, by) {
		return nil
	}
	return &customer.FieldError{Field: field, Reason: fmt.Sprintf("must be one of %v", allowed)}
}

// Counts are the raw tallies of one group over one period, as the store reads them. Every
// field adds up across groups (a customer belongs to one group), so a total is a sum.
type Counts struct {
	NewCustomers    int64 // customers created in the period (not merged away)
	Active          int64 // customers with any event in the period
	Buyers          int64 // customers with a paid order (not fully refunded) paid in the period
	FirstTimeBuyers int64 // buyers whose first paid order ever was paid in the period
	RepeatBuyers    int64 // buyers with 2 or more paid orders paid in the period
	Orders          int64 // paid orders (not fully refunded) paid in the period
	GMVMinor        int64 // Σ(amount − refunded) over every order paid in the period
	Converted       int64 // new customers whose first paid order was paid before the period ended
	// DaysToFirstOrder holds, per converted new customer, the days from creation to the first
	// paid order (0 when the order came first, as with imported history).
	DaysToFirstOrder []float64
}

// Add adds o to c.
func (c *Counts) Add(o *Counts) {
	c.NewCustomers += o.NewCustomers
	c.Active += o.Active
	c.Buyers += o.Buyers
	c.FirstTimeBuyers += o.FirstTimeBuyers
	c.RepeatBuyers += o.RepeatBuyers
	c.Orders += o.Orders
	c.GMVMinor += o.GMVMinor
	c.Converted += o.Converted
	c.DaysToFirstOrder = append(c.DaysToFirstOrder, o.DaysToFirstOrder...)
}

// Total adds up the counts of every group.
func Total(groups map[string]*Counts) Counts {
	var t Counts
	for _, c := range groups {
		t.Add(c)
	}
	return t
}

// Source reads the aggregates behind the reports; the store implements it.
type Source interface {
	// AnalyticsCounts tallies [from, to) per group of scope.By ("" without a split).
	AnalyticsCounts(ctx context.Context, sc Scope, from, to time.Time) (map[string]*Counts, error)
	// CohortCounts reads the sizes of the first cohorts buckets between edges and, per later
	// bucket up to the last edge, their active (or buying) customers.
	CohortCounts(ctx context.Context, sc Scope, edges []time.Time, cohorts int, metric CohortMetric) ([]CohortCount, error)
	// FunnelEvents streams the events named in names of the customers who did first in
	// [from, to), with timestamps in [from, until), ordered by customer, time and id.
	FunnelEvents(ctx context.Context, sc Scope, names []string, first string, from, to, until time.Time, fn func(customerID int64, group string, ev FunnelEvent) error) error
}

// The metric keys, in the order reports list them.
const (
	MetricNewCustomers    = "new_customers"
	MetricActiveCustomers = "active_customers"
	MetricBuyers          = "buyers"
	MetricFirstTimeBuyers = "first_time_buyers"
	MetricRepeatBuyers    = "repeat_buyers"
	MetricOrders          = "orders"
	MetricGMV             = "gmv_minor"
	MetricAOV             = "aov_minor"
	MetricRepurchaseRate  = "repurchase_rate"
	MetricConverted       = "converted_new_customers"
	MetricConversionRate  = "conversion_rate"
	MetricMedianDaysToBuy = "median_days_to_first_order"
	unitCount, unitMinor  = "count", "minor"
	unitRatio, unitDays   = "ratio", "days"
	paidOrder             = "a paid order is one not fully refunded (status paid or partially_refunded; zero amounts count)"
	definitionGMV         = "Σ (amount − refunded) in minor units over the orders paid in the period; a refund counts against the period the order was paid in, whenever it happened"
	definitionRepurchase  = "repeat buyers ÷ buyers: the share of customers with a paid order in the period who have 2 or more paid orders in the period; " + paidOrder
	definitionConversion  = "converted ÷ new customers: the share of customers created in the period whose first paid order was paid before the period ended"
	definitionMedianDays  = "the median, over converted new customers, of the days from creation to the first paid order (0 when the order predates the customer record)"
)

// Definition is one metric's key, unit and meaning, as operators read it.
type Definition struct {
	Key        string `json:"key"`
	Unit       string `json:"unit"`
	Definition string `json:"definition"`
}

// Definitions are every metric of a metrics report, in order.
var Definitions = []Definition{
	{MetricNewCustomers, unitCount, "customers created in the period (a customer merged into another is not counted again)"},
	{MetricActiveCustomers, unitCount, "customers with at least one event (any type) timestamped in the period"},
	{MetricBuyers, unitCount, "customers with at least one paid order paid in the period; " + paidOrder},
	{MetricFirstTimeBuyers, unitCount, "buyers whose first paid order ever was paid in the period"},
	{MetricRepeatBuyers, unitCount, "buyers with 2 or more paid orders paid in the period"},
	{MetricOrders, unitCount, "paid orders paid in the period"},
	{MetricGMV, unitMinor, definitionGMV},
	{MetricAOV, unitMinor, "GMV ÷ orders, rounded to the nearest minor unit (0 without orders)"},
	{MetricRepurchaseRate, unitRatio, definitionRepurchase},
	{MetricConverted, unitCount, "new customers whose first paid order was paid before the period ended"},
	{MetricConversionRate, unitRatio, definitionConversion},
	{MetricMedianDaysToBuy, unitDays, definitionMedianDays},
}

// Metric is one figure in the period and in the previous one.
type Metric struct {
	Key        string   `json:"key"`
	Unit       string   `json:"unit"`
	Current    *float64 `json:"current"`  // null when undefined (a median of nothing)
	Previous   *float64 `json:"previous"` // the same for the previous period
	Change     *float64 `json:"change"`   // (current − previous) ÷ previous; null when previous is 0 or null
	Definition string   `json:"definition"`
}

// MetricGroup is the metrics of one group (Key "" is everyone in scope).
type MetricGroup struct {
	Key     string   `json:"key"`
	Metrics []Metric `json:"metrics"`
}

// MetricsReport is a metrics answer.
type MetricsReport struct {
	From         string        `json:"from"`
	To           string        `json:"to"` // exclusive
	PreviousFrom string        `json:"previous_from"`
	PreviousTo   string        `json:"previous_to"`
	TimeZone     string        `json:"time_zone"`
	By           string        `json:"by,omitempty"`
	Total        MetricGroup   `json:"total"`
	Groups       []MetricGroup `json:"groups,omitempty"`
}

// Figures computes every metric of one group's counts, in Definitions order; a nil value is
// undefined (the median without converted customers).
func Figures(c *Counts) []*float64 {
	v := func(x float64) *float64 { return &x }
	out := []*float64{
		v(float64(c.NewCustomers)), v(float64(c.Active)), v(float64(c.Buyers)), v(float64(c.FirstTimeBuyers)),
		v(float64(c.RepeatBuyers)), v(float64(c.Orders)), v(float64(c.GMVMinor)), v(0),
		v(Ratio(c.RepeatBuyers, c.Buyers)), v(float64(c.Converted)), v(Ratio(c.Converted, c.NewCustomers)), nil,
	}
	if c.Orders > 0 {
		*out[7] = math.Round(float64(c.GMVMinor) / float64(c.Orders))
	}
	if m, ok := Median(c.DaysToFirstOrder); ok {
		out[11] = v(round(m, 2))
	}
	return out
}

// Ratio is n ÷ d rounded to 4 decimals, 0 when d is 0.
func Ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return round(float64(n)/float64(d), 4)
}

func round(x float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(x*p) / p
}

// Median is the middle value (the mean of the two middle values for an even count); ok is
// false for no values. It does not reorder xs.
func Median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// Change is the relative change from prev to cur, rounded to 4 decimals; nil when it is
// undefined (prev 0 or either side undefined).
func Change(cur, prev *float64) *float64 {
	if cur == nil || prev == nil || *prev == 0 {
		return nil
	}
	c := round((*cur-*prev) / *prev, 4)
	return &c
}

func metricGroup(key string, cur, prev *Counts) MetricGroup {
	fc, fp := Figures(cur), Figures(prev)
	g := MetricGroup{Key: key, Metrics: make([]Metric, len(Definitions))}
	for i, d := range Definitions {
		g.Metrics[i] = Metric{Key: d.Key, Unit: d.Unit, Current: fc[i], Previous: fp[i], Change: Change(fc[i], fp[i]), Definition: d.Definition}
	}
	return g
}

// Metrics reports every metric over p and the period before it, for the customers in scope,
// split by sc.By when it is set.
func Metrics(ctx context.Context, src Source, sc Scope, p Period, loc *time.Location) (*MetricsReport, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := CheckBy(sc.By, "by", GroupFields...); err != nil {
		return nil, err
	}
	prev := p.Previous()
	from, to := p.Bounds(loc)
	cur, err := src.AnalyticsCounts(ctx, sc, from, to)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", p, err)
	}
	pfrom, pto := prev.Bounds(loc)
	old, err := src.AnalyticsCounts(ctx, sc, pfrom, pto)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", prev, err)
	}
	rep := &MetricsReport{From: dayString(p.From), To: dayString(p.To), PreviousFrom: dayString(prev.From), PreviousTo: dayString(prev.To), TimeZone: loc.String(), By: sc.By}
	var tc, tp Counts
	keys := map[string]bool{}
	for k, c := range cur {
		keys[k] = true
		tc.Add(c)
	}
	for k, c := range old {
		keys[k] = true
		tp.Add(c)
	}
	rep.Total = metricGroup("", &tc, &tp)
	if sc.By != "" {
		rep.Groups = []MetricGroup{}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			rep.Groups = append(rep.Groups, metricGroup(k, orZero(cur[k]), orZero(old[k])))
		}
	}
	return rep, nil
}

func orZero(c *Counts) *Counts {
	if c == nil {
		return &Counts{}
	}
	return c
}
