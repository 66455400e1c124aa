package model

import (
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Points ledger kinds.
const (
	PointsEarn   = "earn"   // from an order (negative: reversed by a refund) or an event rule
	PointsSpend  = "spend"  // redeemed through the API
	PointsExpire = "expire" // an earn lot reached its expiry
	PointsAdjust = "adjust" // an operator's correction, with a reason
)

// Points rules named in the ledger.
const (
	OrderRule  = "order"  // per yuan spent
	ManualRule = "manual" // spend and adjust through the API
	ExpiryRule = "expiry" // the expiry run
)

// PointsEventRule earns Points for each event named Event, at most DailyCap times per
// customer and day (Asia/Shanghai, by the event's time; 0: no cap).
type PointsEventRule struct {
	Event    string `json:"event"`
	Points   int64  `json:"points"`
	DailyCap int    `json:"daily_cap"`
}

// PointsConfig configures how points are earned and when they expire.
type PointsConfig struct {
	// PerYuan: points per whole yuan of a paid CNY order (0: orders earn nothing). A refund
	// reverses the order's points in proportion to the amount refunded.
	PerYuan int64             `json:"per_yuan"`
	Events  []PointsEventRule `json:"events"`
	// ExpiryDays: points expire this many days after they were earned, oldest first (0: never).
	ExpiryDays int `json:"expiry_days"`
}

// DefaultPointsConfig earns 1 point per yuan, 10 per daily check-in, 100 per converted
// referral and 20 per answered survey (once a day), expiring after a year.
func DefaultPointsConfig() PointsConfig {
	return PointsConfig{
		PerYuan: 1,
		Events: []PointsEventRule{
			{Event: "Checked In", Points: 10, DailyCap: 1},
			{Event: "Referral Converted", Points: 100},
			{Event: "Survey Answered", Points: 20, DailyCap: 1},
		},
		ExpiryDays: 365,
	}
}

// Points bounds.
const (
	MaxPerYuan     = 1000
	MaxEventPoints = 1_000_000
	MaxDailyCap    = 1000
	// MaxPointsChange bounds one spend or adjustment.
	MaxPointsChange = 100_000_000
)

// Normalize trims the event names.
func (c *PointsConfig) Normalize() {
	if c.Events == nil {
		c.Events = []PointsEventRule{}
	}
	for i := range c.Events {
		c.Events[i].Event = strings.TrimSpace(c.Events[i].Event)
	}
}

// Validate names the first bad field.
func (c *PointsConfig) Validate() error {
	fe := func(field, format string, args ...any) error {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.PerYuan < 0 || c.PerYuan > MaxPerYuan {
		return fe("per_yuan", "must be between 0 and %d, got %d", MaxPerYuan, c.PerYuan)
	}
	if c.ExpiryDays < 0 || c.ExpiryDays > MaxWindowDays {
		return fe("expiry_days", "must be between 0 (never) and %d days, got %d", MaxWindowDays, c.ExpiryDays)
	}
	seen := map[string]int{}
	for i, r := range c.Events {
		at := func(f string) string { return fmt.Sprintf("events[%d].%s", i, f) }
		if r.Event == "" {
			return fe(at("event"), "must not be empty")
		}
		if j, dup := seen[r.Event]; dup {
			return fe(at("event"), "%q already has a rule (events[%d])", r.Event, j)
		}
		seen[r.Event] = i
		if r.Points < 1 || r.Points > MaxEventPoints {
			return fe(at("points"), "must be between 1 and %d, got %d", MaxEventPoints, r.Points)
		}
		if r.DailyCap < 0 || r.DailyCap > MaxDailyCap {
			return fe(at("daily_cap"), "must be between 0 (no cap) and %d, got %d", MaxDailyCap, r.DailyCap)
		}
	}
	return nil
}

// EventRule returns the rule of an event name.
func (c *PointsConfig) EventRule(name string) (PointsEventRule, bool) {
	for _, r := range c.Events {
		if r.Event == name {
			return r, true
		}
	}
	return PointsEventRule{}, false
}

// OrderPoints is what a paid order of amountMinor earns.
func (c *PointsConfig) OrderPoints(amountMinor int64) int64 {
	if amountMinor <= 0 {
		return 0
	}
	return amountMinor / 100 * c.PerYuan
}

// KeptPoints is what remains of earned points of an order of amountMinor after refunds left
// netMinor: the points in proportion, rounded down (a refund never leaves more points than
// the share it kept).
func KeptPoints(earned, amountMinor, netMinor int64) int64 {
	if amountMinor <= 0 || netMinor >= amountMinor {
		return earned
	}
	if netMinor <= 0 {
		return 0
	}
	// earned × net / amount without overflow for any realistic amounts (earned ≤ 1e3 × 1e12/100).
	return int64(float64(earned) * float64(netMinor) / float64(amountMinor))
}

// ExpiresAt is when points earned at at expire (zero: never).
func (c *PointsConfig) ExpiresAt(at time.Time) time.Time {
	if c.ExpiryDays == 0 {
		return time.Time{}
	}
	return at.Add(time.Duration(c.ExpiryDays) * 24 * time.Hour)
}

// PointsEntry is one row of the points ledger. Key makes it idempotent: a second entry with a
// key already in the ledger is not written.
type PointsEntry struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	Delta      int64     `json:"delta"`
	Kind       string    `json:"kind"`
	Rule       string    `json:"rule"`
	Reason     string    `json:"reason,omitempty"`
	Ref        string    `json:"ref,omitempty"` // what it came from: order:ID, event:MESSAGEID, lot:ID
	Key        string    `json:"idempotency_key"`
	StaffID    int64     `json:"staff_id,omitempty"`
	At         time.Time `json:"at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
}

// PointsBalance is a customer's balance and lifetime totals.
type PointsBalance struct {
	CustomerID int64 `json:"customer_id"`
	Balance    int64 `json:"balance"`
	Earned     int64 `json:"earned"` // net of refund reversals and adjustments
	Spent      int64 `json:"spent"`
	Expired    int64 `json:"expired"`
	// ExpiringSoon is the part of the balance that expires within the next 30 days.
	ExpiringSoon int64 `json:"expiring_soon"`
}
