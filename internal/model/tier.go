package model

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// TierModel names the member tier model in customer_stages and model_events: a customer's
// tier is its stage of this model, so tier changes have history and events like any stage.
const TierModel = "tier"

// Tier ladder bounds.
const (
	MinTiers = 2
	MaxTiers = 10
)

// Tier match modes: a tier's thresholds must all hold, or any one of them.
const (
	MatchAll = "all"
	MatchAny = "any"
)

// Tier is one rung of the ladder. The first tier is everyone's (it has no thresholds); a
// higher tier is reached by meeting its thresholds, each over the ladder's window except the
// points balance, which is the balance now. A nil threshold is not used.
type Tier struct {
	Name  string `json:"name"`
	Match string `json:"match,omitempty"` // all (default) or any
	// MinPoints: points balance at least this.
	MinPoints *int64 `json:"min_points,omitempty"`
	// MinSpend: paid amount in the window net of refunds, in minor units (分), at least this.
	MinSpend *int64 `json:"min_spend,omitempty"`
	// MinOrders: paid orders (not fully refunded) in the window, at least this.
	MinOrders *int64 `json:"min_orders,omitempty"`
	// MinReferrals: referral events (TierConfig.ReferralEvents) in the window, at least this.
	MinReferrals *int64 `json:"min_referrals,omitempty"`
	// MinActivity: events of any kind in the window (model events excluded), at least this.
	MinActivity *int64 `json:"min_activity,omitempty"`
}

// Demotion says whether and when a customer who no longer meets their tier drops.
type Demotion struct {
	// Enabled: a customer who no longer meets their tier drops to the highest tier they meet.
	// Disabled, tiers only ever go up (lifetime tiers).
	Enabled bool `json:"enabled"`
	// KeepDays: a tier is kept at least this many days after it was entered (保级期), 0: none.
	KeepDays int `json:"keep_days"`
}

// TierConfig is the member tier ladder, lowest tier first.
type TierConfig struct {
	Tiers []Tier `json:"tiers"`
	// WindowDays is the window of spend, orders, referrals and activity: the WindowDays days
	// ending today (Asia/Shanghai), today included.
	WindowDays int `json:"window_days"`
	// ReferralEvents are the event names counted as referrals (default "Referral Converted").
	ReferralEvents []string `json:"referral_events"`
	Demotion       Demotion `json:"demotion"`
}

func ptr(v int64) *int64 { return &v }

// DefaultTierConfig is the four-tier ladder 普通会员 / 初级会员 / 中级会员 / 高级会员 by net
// spend in a year or points balance, demoted after a 90-day keep period.
func DefaultTierConfig() TierConfig {
	return TierConfig{
		Tiers: []Tier{
			{Name: "普通会员"},
			{Name: "初级会员", Match: MatchAny, MinSpend: ptr(50000), MinPoints: ptr(500)},
			{Name: "中级会员", Match: MatchAny, MinSpend: ptr(200000), MinPoints: ptr(2000)},
			{Name: "高级会员", Match: MatchAny, MinSpend: ptr(500000), MinPoints: ptr(5000)},
		},
		WindowDays:     365,
		ReferralEvents: []string{"Referral Converted"},
		Demotion:       Demotion{Enabled: true, KeepDays: 90},
	}
}

// tierMetric names one threshold of a tier, for validation and evaluation in one place.
type tierMetric struct {
	field string
	get   func(*Tier) *int64
	value func(*TierMetrics) int64
}

var tierMetrics = []tierMetric{
	{"min_points", func(t *Tier) *int64 { return t.MinPoints }, func(m *TierMetrics) int64 { return m.Points }},
	{"min_spend", func(t *Tier) *int64 { return t.MinSpend }, func(m *TierMetrics) int64 { return m.SpendMinor }},
	{"min_orders", func(t *Tier) *int64 { return t.MinOrders }, func(m *TierMetrics) int64 { return m.Orders }},
	{"min_referrals", func(t *Tier) *int64 { return t.MinReferrals }, func(m *TierMetrics) int64 { return m.Referrals }},
	{"min_activity", func(t *Tier) *int64 { return t.MinActivity }, func(m *TierMetrics) int64 { return m.Activity }},
}

// Normalize trims names and fills the defaults of empty fields.
func (c *TierConfig) Normalize() {
	for i := range c.Tiers {
		c.Tiers[i].Name = strings.TrimSpace(c.Tiers[i].Name)
		c.Tiers[i].Match = strings.TrimSpace(c.Tiers[i].Match)
		if c.Tiers[i].Match == "" && i > 0 {
			c.Tiers[i].Match = MatchAll
		}
	}
	if c.ReferralEvents == nil {
		c.ReferralEvents = []string{"Referral Converted"}
	}
}

// Validate names the first bad field: 2–10 tiers with unique non-empty names, the first
// without thresholds, every other with at least one, each threshold positive and strictly
// greater than the same threshold of every lower tier (overlapping tiers are refused), a
// window of 1–3650 days, a keep period of 0–3650 days.
func (c *TierConfig) Validate() error {
	fe := func(field, format string, args ...any) error {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(c.Tiers) < MinTiers || len(c.Tiers) > MaxTiers {
		return fe("tiers", "want %d to %d tiers, got %d", MinTiers, MaxTiers, len(c.Tiers))
	}
	if c.WindowDays < 1 || c.WindowDays > MaxWindowDays {
		return fe("window_days", "must be between 1 and %d days, got %d", MaxWindowDays, c.WindowDays)
	}
	if c.Demotion.KeepDays < 0 || c.Demotion.KeepDays > MaxWindowDays {
		return fe("demotion.keep_days", "must be between 0 and %d days, got %d", MaxWindowDays, c.Demotion.KeepDays)
	}
	for i, ev := range c.ReferralEvents {
		if strings.TrimSpace(ev) == "" {
			return fe(fmt.Sprintf("referral_events[%d]", i), "must not be empty")
		}
	}
	seen := map[string]int{}
	for i := range c.Tiers {
		t := &c.Tiers[i]
		at := func(f string) string { return fmt.Sprintf("tiers[%d].%s", i, f) }
		if t.Name == "" {
			return fe(at("name"), "must not be empty")
		}
		if utf8.RuneCountInString(t.Name) > 32 {
			return fe(at("name"), "at most 32 characters")
		}
		if j, dup := seen[t.Name]; dup {
			return fe(at("name"), "%q is already the name of tiers[%d]", t.Name, j)
		}
		seen[t.Name] = i
		used := 0
		for _, m := range tierMetrics {
			v := m.get(t)
			if v == nil {
				continue
			}
			used++
			if i == 0 {
				return fe(at(m.field), "the first tier is every member's and has no thresholds")
			}
			if *v < 1 {
				return fe(at(m.field), "must be at least 1, got %d", *v)
			}
			for j := i - 1; j >= 1; j-- {
				if w := m.get(&c.Tiers[j]); w != nil {
					if *v <= *w {
						return fe(at(m.field), "must be greater than tiers[%d].%s (%d): thresholds increase up the ladder, got %d", j, m.field, *w, *v)
					}
					break
				}
			}
		}
		if i == 0 {
			if t.Match != "" && t.Match != MatchAll {
				return fe(at("match"), "the first tier has no thresholds to match")
			}
			continue
		}
		if used == 0 {
			return fe(at("min_spend"), "a tier above the first needs at least one threshold (min_points, min_spend, min_orders, min_referrals, min_activity)")
		}
		if t.Match != MatchAll && t.Match != MatchAny {
			return fe(at("match"), "must be all or any, got %q", t.Match)
		}
	}
	return nil
}

// UsesReferrals and UsesActivity report whether any tier needs the event counts, which cost a
// scan of the window's events.
func (c *TierConfig) UsesReferrals() bool {
	return c.uses(func(t *Tier) *int64 { return t.MinReferrals })
}

// UsesActivity: see UsesReferrals.
func (c *TierConfig) UsesActivity() bool {
	return c.uses(func(t *Tier) *int64 { return t.MinActivity })
}

func (c *TierConfig) uses(get func(*Tier) *int64) bool {
	for i := range c.Tiers {
		if get(&c.Tiers[i]) != nil {
			return true
		}
	}
	return false
}

// Index returns the position of the tier named name, or -1.
func (c *TierConfig) Index(name string) int {
	for i := range c.Tiers {
		if c.Tiers[i].Name == name {
			return i
		}
	}
	return -1
}

// TierMetrics are one customer's inputs of the tier rules.
type TierMetrics struct {
	CustomerID int64
	Points     int64 // balance now
	SpendMinor int64 // net paid in the window
	Orders     int64 // paid orders in the window
	Referrals  int64 // referral events in the window
	Activity   int64 // events in the window
	// Current is the customer's stored tier ("" before the first run) and Since when it
	// entered it.
	Current string
	Since   time.Time
}

// Meets reports whether m meets tier t's thresholds (the first tier: always).
func (t *Tier) Meets(m *TierMetrics) bool {
	some, all, used := false, true, false
	for _, x := range tierMetrics {
		v := x.get(t)
		if v == nil {
			continue
		}
		used = true
		if x.value(m) >= *v {
			some = true
		} else {
			all = false
		}
	}
	if !used {
		return true
	}
	if t.Match == MatchAny {
		return some
	}
	return all
}

// Qualified is the highest tier whose thresholds m meets.
func (c *TierConfig) Qualified(m *TierMetrics) int {
	for i := len(c.Tiers) - 1; i > 0; i-- {
		if c.Tiers[i].Meets(m) {
			return i
		}
	}
	return 0
}

// TierOf is the tier a customer holds at now: the highest tier they qualify for when that is
// at or above their current one (promotion is immediate); below it, the current tier is kept
// while demotion is disabled or the keep period since entering it has not passed, and
// otherwise they drop to the qualified tier. A current tier no longer on the ladder is replaced.
func (c *TierConfig) TierOf(m *TierMetrics, now time.Time) int {
	q := c.Qualified(m)
	cur := c.Index(m.Current)
	if cur <= q {
		return q
	}
	if !c.Demotion.Enabled {
		return cur
	}
	if c.Demotion.KeepDays > 0 && now.Before(m.Since.Add(time.Duration(c.Demotion.KeepDays)*24*time.Hour)) {
		return cur
	}
	return q
}

// Gate is a named price gate (价格门槛) that group and community features check before letting
// a customer in: a minimum tier, a recent paid order, or both (Match all) or either (any).
type Gate struct {
	ID    int64      `json:"id"`
	Name  string     `json:"name"`
	Match string     `json:"match"`              // all (default) or any
	Tier  string     `json:"min_tier,omitempty"` // requires tier ≥ this tier of the ladder
	Order *GateOrder `json:"order,omitempty"`
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// GateOrder requires a paid order (not fully refunded) paid within the last WithinDays days
// whose amount net of refunds is at least MinAmount minor units and, when Products is set,
// that has a line whose product_id, sku or name is one of Products.
type GateOrder struct {
	MinAmount  int64    `json:"min_amount"`
	Products   []string `json:"products,omitempty"`
	WithinDays int      `json:"within_days"`
}

// Normalize trims the gate's names and fills the default match.
func (g *Gate) Normalize() {
	g.Name, g.Tier, g.Match = strings.TrimSpace(g.Name), strings.TrimSpace(g.Tier), strings.TrimSpace(g.Match)
	if g.Match == "" {
		g.Match = MatchAll
	}
	if g.Order != nil {
		for i := range g.Order.Products {
			g.Order.Products[i] = strings.TrimSpace(g.Order.Products[i])
		}
	}
}

// Validate names the first bad field; ladder is the tier configuration min_tier refers to.
func (g *Gate) Validate(ladder *TierConfig) error {
	fe := func(field, format string, args ...any) error {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if g.Name == "" {
		return fe("name", "must not be empty")
	}
	if utf8.RuneCountInString(g.Name) > 64 {
		return fe("name", "at most 64 characters")
	}
	if g.Match != MatchAll && g.Match != MatchAny {
		return fe("match", "must be all or any, got %q", g.Match)
	}
	if g.Tier == "" && g.Order == nil {
		return fe("min_tier", "a gate needs min_tier, order or both")
	}
	if g.Tier != "" && ladder.Index(g.Tier) < 0 {
		names := make([]string, len(ladder.Tiers))
		for i, t := range ladder.Tiers {
			names[i] = t.Name
		}
		return fe("min_tier", "no tier %q on the ladder (%s)", g.Tier, strings.Join(names, ", "))
	}
	if o := g.Order; o != nil {
		if o.WithinDays < 1 || o.WithinDays > MaxWindowDays {
			return fe("order.within_days", "must be between 1 and %d days, got %d", MaxWindowDays, o.WithinDays)
		}
		if o.MinAmount < 0 {
			return fe("order.min_amount", "must not be negative, got %d", o.MinAmount)
		}
		for i, p := range o.Products {
			if p == "" {
				return fe(fmt.Sprintf("order.products[%d]", i), "must not be empty")
			}
		}
	}
	return nil
}

// TierStore reads the tier rules' inputs and keeps tiers as stages of TierModel.
type TierStore interface {
	// TierMetrics returns every customer not merged away with the inputs of cfg's rules over
	// [from, to) and its stored tier.
	TierMetrics(ctx context.Context, cfg *TierConfig, from, to time.Time) ([]TierMetrics, error)
	// ApplyStages: see LifecycleStore.
	ApplyStages(ctx context.Context, model string, stages []StageAssignment, at time.Time) (int, error)
}

// TierRun is what one tier run (or a preview) did.
type TierRun struct {
	Changed int `json:"changed"` // customers whose tier was set or changed (0 in a preview)
	// Counts is the number of customers per tier, in ladder order.
	Counts []int64 `json:"counts"`
	// Promoted and Demoted moved up or down the ladder; Held no longer meet their tier but keep
	// it (keep period, or demotion disabled); Placed had no tier on this ladder before.
	Promoted int64 `json:"promoted"`
	Demoted  int64 `json:"demoted"`
	Held     int64 `json:"held"`
	Placed   int64 `json:"placed"`
}

// computeTiers computes every customer's tier at now.
func computeTiers(ctx context.Context, st TierStore, cfg *TierConfig, now time.Time) (*TierRun, []StageAssignment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	from, to := Window(segment.DayOf(now, segment.Shanghai), cfg.WindowDays, segment.Shanghai)
	ms, err := st.TierMetrics(ctx, cfg, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("tier inputs: %w", err)
	}
	run := &TierRun{Counts: make([]int64, len(cfg.Tiers))}
	stages := make([]StageAssignment, len(ms))
	for i := range ms {
		m := &ms[i]
		t, cur := cfg.TierOf(m, now), cfg.Index(m.Current)
		switch {
		case cur < 0:
			run.Placed++
		case t > cur:
			run.Promoted++
		case t < cur:
			run.Demoted++
		case cfg.Qualified(m) < cur:
			run.Held++
		}
		run.Counts[t]++
		stages[i] = StageAssignment{CustomerID: m.CustomerID, Stage: Stage(cfg.Tiers[t].Name)}
	}
	return run, stages, nil
}

// RunTiers computes every customer's tier at now (the window: cfg.WindowDays days ending
// today in Asia/Shanghai) and stores the changes: a run over unchanged data changes nothing.
func RunTiers(ctx context.Context, st TierStore, cfg TierConfig, now time.Time) (*TierRun, error) {
	run, stages, err := computeTiers(ctx, st, &cfg, now)
	if err != nil {
		return nil, err
	}
	if run.Changed, err = st.ApplyStages(ctx, TierModel, stages, now); err != nil {
		return nil, fmt.Errorf("apply tiers: %w", err)
	}
	return run, nil
}

// PreviewTiers answers what a run with cfg would do now, writing nothing: for trying a new
// ladder on the real customers before saving it.
func PreviewTiers(ctx context.Context, st TierStore, cfg TierConfig, now time.Time) (*TierRun, error) {
	run, _, err := computeTiers(ctx, st, &cfg, now)
	return run, err
}
