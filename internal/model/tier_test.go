package model

import (
	"errors"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

func fieldOf(err error) string {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestTierConfigValidation(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(c *TierConfig)
		field string
	}{
		{"default", func(c *TierConfig) {}, ""},
		{"overlapping spend", func(c *TierConfig) { c.Tiers[2].MinSpend = ptr(50000) }, "tiers[2].min_spend"},
		{"decreasing points", func(c *TierConfig) { c.Tiers[3].MinPoints = ptr(100) }, "tiers[3].min_points"},
		{"skips a tier without the threshold", func(c *TierConfig) {
			c.Tiers[2].MinOrders, c.Tiers[3].MinOrders = nil, ptr(1)
			c.Tiers[1].MinOrders = ptr(1)
		}, "tiers[3].min_orders"},
		{"window 0", func(c *TierConfig) { c.WindowDays = 0 }, "window_days"},
		{"one tier", func(c *TierConfig) { c.Tiers = c.Tiers[:1] }, "tiers"},
		{"eleven tiers", func(c *TierConfig) {
			for len(c.Tiers) < 11 {
				c.Tiers = append(c.Tiers, Tier{Name: string(rune('A' + len(c.Tiers))), Match: MatchAll, MinOrders: ptr(int64(len(c.Tiers)))})
			}
		}, "tiers"},
		{"duplicate name", func(c *TierConfig) { c.Tiers[2].Name = "初级会员" }, "tiers[2].name"},
		{"empty name", func(c *TierConfig) { c.Tiers[1].Name = "" }, "tiers[1].name"},
		{"base tier threshold", func(c *TierConfig) { c.Tiers[0].MinSpend = ptr(1) }, "tiers[0].min_spend"},
		{"no threshold", func(c *TierConfig) { c.Tiers[1] = Tier{Name: "x", Match: MatchAll} }, "tiers[1].min_spend"},
		{"zero threshold", func(c *TierConfig) { c.Tiers[1].MinSpend = ptr(0) }, "tiers[1].min_spend"},
		{"bad match", func(c *TierConfig) { c.Tiers[1].Match = "some" }, "tiers[1].match"},
		{"negative keep", func(c *TierConfig) { c.Demotion.KeepDays = -1 }, "demotion.keep_days"},
		{"empty referral event", func(c *TierConfig) { c.ReferralEvents = []string{""} }, "referral_events[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultTierConfig()
			tc.edit(&c)
			c.Normalize()
			if got := fieldOf(c.Validate()); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, c.Validate())
			}
		})
	}
}

func TestTierOf(t *testing.T) {
	c := TierConfig{
		Tiers: []Tier{
			{Name: "普通"},
			{Name: "初级", Match: MatchAll, MinSpend: ptr(100), MinOrders: ptr(2)},
			{Name: "高级", Match: MatchAny, MinSpend: ptr(1000), MinReferrals: ptr(3)},
		},
		WindowDays: 30, Demotion: Demotion{Enabled: true, KeepDays: 10},
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		m    TierMetrics
		want int
	}{
		{"nothing", TierMetrics{}, 0},
		{"all needs both", TierMetrics{SpendMinor: 500, Orders: 1}, 0},
		{"all met", TierMetrics{SpendMinor: 500, Orders: 2}, 1},
		{"any: referrals alone", TierMetrics{Referrals: 3}, 2},
		{"promotion is immediate", TierMetrics{SpendMinor: 1000, Current: "初级", Since: now}, 2},
		{"kept within keep days", TierMetrics{Current: "高级", Since: now.Add(-9 * 24 * time.Hour)}, 2},
		{"dropped after keep days, to the highest met", TierMetrics{SpendMinor: 100, Orders: 2, Current: "高级", Since: now.Add(-10 * 24 * time.Hour)}, 1},
		{"tier off the ladder is replaced", TierMetrics{Current: "银卡", Since: now}, 0},
	}
	for _, tc := range cases {
		if got := c.TierOf(&tc.m, now); got != tc.want {
			t.Errorf("%s: tier %d, want %d", tc.name, got, tc.want)
		}
	}
	c.Demotion.Enabled = false
	if got := c.TierOf(&TierMetrics{Current: "高级", Since: now.Add(-100 * 24 * time.Hour)}, now); got != 2 {
		t.Errorf("without demotion a tier is kept: got %d", got)
	}
}

func TestGateValidation(t *testing.T) {
	ladder := DefaultTierConfig()
	cases := []struct {
		g     Gate
		field string
	}{
		{Gate{Name: "高级群", Tier: "高级会员"}, ""},
		{Gate{Name: "体验课群", Order: &GateOrder{MinAmount: 9900, WithinDays: 30, Products: []string{"SKU-1"}}}, ""},
		{Gate{Name: "", Tier: "高级会员"}, "name"},
		{Gate{Name: "x"}, "min_tier"},
		{Gate{Name: "x", Tier: "钻石会员"}, "min_tier"},
		{Gate{Name: "x", Order: &GateOrder{WithinDays: 0}}, "order.within_days"},
		{Gate{Name: "x", Order: &GateOrder{WithinDays: 1, MinAmount: -1}}, "order.min_amount"},
		{Gate{Name: "x", Order: &GateOrder{WithinDays: 1, Products: []string{" "}}}, "order.products[0]"},
		{Gate{Name: "x", Tier: "高级会员", Match: "either"}, "match"},
	}
	for _, tc := range cases {
		tc.g.Normalize()
		if got := fieldOf(tc.g.Validate(&ladder)); got != tc.field {
			t.Errorf("%+v: field %q, want %q", tc.g, got, tc.field)
		}
	}
}

func TestPointsConfig(t *testing.T) {
	c := DefaultPointsConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.OrderPoints(12399); got != 123 {
		t.Errorf("¥123.99 earns %d, want 123 (whole yuan)", got)
	}
	for _, tc := range []struct{ earned, amount, net, want int64 }{
		{123, 12345, 12345, 123},
		{123, 12345, 6173, 61},
		{123, 12345, 0, 0},
		{100, 0, 0, 100},
	} {
		if got := KeptPoints(tc.earned, tc.amount, tc.net); got != tc.want {
			t.Errorf("KeptPoints(%d, %d, %d) = %d, want %d", tc.earned, tc.amount, tc.net, got, tc.want)
		}
	}
	bad := []struct {
		edit  func(c *PointsConfig)
		field string
	}{
		{func(c *PointsConfig) { c.PerYuan = -1 }, "per_yuan"},
		{func(c *PointsConfig) { c.ExpiryDays = -1 }, "expiry_days"},
		{func(c *PointsConfig) { c.Events[1].Points = 0 }, "events[1].points"},
		{func(c *PointsConfig) { c.Events[0].DailyCap = -1 }, "events[0].daily_cap"},
		{func(c *PointsConfig) { c.Events[2].Event = " " }, "events[2].event"},
	}
	for _, tc := range bad {
		c := DefaultPointsConfig()
		tc.edit(&c)
		c.Normalize()
		if got := fieldOf(c.Validate()); got != tc.field {
			t.Errorf("field %q, want %q", got, tc.field)
		}
	}
}
