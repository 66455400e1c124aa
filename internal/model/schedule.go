package model

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Recomputer is one model the schedule recomputes: Run computes it at now and reports how
// many customers' values changed (0 over unchanged data).
type Recomputer struct {
	Name string
	Run  func(ctx context.Context, now time.Time) (changed int, err error)
}

// Registry holds the recomputable models in the order they run (RFM before the models that
// might read it). Models of other packages plug in with Register. Safe for concurrent use.
type Registry struct {
	mu   sync.RWMutex
	list []Recomputer
}

// Register adds r, or replaces the recomputer of the same name in place.
func (g *Registry) Register(r Recomputer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.list {
		if g.list[i].Name == r.Name {
			g.list[i] = r
			return
		}
	}
	g.list = append(g.list, r)
}

// Names lists the registered models in order.
func (g *Registry) Names() []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]string, len(g.list))
	for i, r := range g.list {
		out[i] = r.Name
	}
	return out
}

// Select returns the recomputers of names in registration order; no names selects all.
func (g *Registry) Select(names []string) []Recomputer {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Recomputer
	for _, r := range g.list {
		if len(names) == 0 || slices.Contains(names, r.Name) {
			out = append(out, r)
		}
	}
	return out
}

// ModelResult is the outcome of recomputing one model.
type ModelResult struct {
	Model   string  `json:"model"`
	Changed int     `json:"changed"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// RunAll recomputes rs in order at now. A model that fails does not stop the others; its
// error is in its result and the first error is returned too.
func RunAll(ctx context.Context, rs []Recomputer, now time.Time) ([]ModelResult, error) {
	out := make([]ModelResult, 0, len(rs))
	var first error
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		start := time.Now()
		n, err := r.Run(ctx, now)
		res := ModelResult{Model: r.Name, Changed: n, Seconds: time.Since(start).Round(time.Millisecond).Seconds()}
		if err != nil {
			res.Error = err.Error()
			if first == nil {
				first = fmt.Errorf("recompute %s: %w", r.Name, err)
			}
		}
		out = append(out, res)
	}
	return out, first
}

// ScheduleConfig is when the models are recomputed.
type ScheduleConfig struct {
	Enabled bool `json:"enabled"`
	// Cron is a standard five-field expression (minute hour day month weekday) or a
	// descriptor such as @daily, read in Timezone; default "0 3 * * *" (03:00 every day).
	Cron string `json:"cron"`
	// Timezone is an IANA zone name; default Asia/Shanghai.
	Timezone string `json:"timezone"`
	// Models are the models recomputed; empty means every registered model.
	Models []string `json:"models"`
}

// DefaultSchedule recomputes every model daily at 03:00 Asia/Shanghai, after the night's
// imports and before operators start work.
func DefaultSchedule() ScheduleConfig {
	return ScheduleConfig{Enabled: true, Cron: "0 3 * * *", Timezone: "Asia/Shanghai"}
}

// MinScheduleGap is the shortest time allowed between two recomputes: each reads every
// customer, so a schedule every few minutes would only load the database.
const MinScheduleGap = 15 * time.Minute

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Location is the schedule's time zone (Asia/Shanghai without zone data on the host falls
// back to UTC+8).
func (c *ScheduleConfig) Location() (*time.Location, error) {
	if c.Timezone == "" || c.Timezone == "Asia/Shanghai" {
		return segment.Shanghai, nil
	}
	return time.LoadLocation(c.Timezone)
}

// Validate checks the schedule against the registered model names and fills defaults.
// Errors name the field.
func (c *ScheduleConfig) Validate(known []string) error {
	def := DefaultSchedule()
	c.Cron, c.Timezone = strings.TrimSpace(c.Cron), strings.TrimSpace(c.Timezone)
	if c.Cron == "" {
		c.Cron = def.Cron
	}
	if c.Timezone == "" {
		c.Timezone = def.Timezone
	}
	if strings.HasPrefix(c.Cron, "TZ=") || strings.HasPrefix(c.Cron, "CRON_TZ=") {
		return &customer.FieldError{Field: "cron", Reason: "give the time zone in timezone, not in the expression"}
	}
	sched, err := cronParser.Parse(c.Cron)
	if err != nil {
		return &customer.FieldError{Field: "cron", Reason: fmt.Sprintf("want five fields (minute hour day month weekday) or @daily: %v", err)}
	}
	loc, err := c.Location()
	if err != nil {
		return &customer.FieldError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q", c.Timezone)}
	}
	// Look at a year of firings from a fixed day for one closer than MinScheduleGap.
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	prev := sched.Next(t)
	if prev.IsZero() {
		return &customer.FieldError{Field: "cron", Reason: "never fires"}
	}
	for i := 0; i < 400; i++ {
		next := sched.Next(prev)
		if next.IsZero() {
			break
		}
		if next.Sub(prev) < MinScheduleGap {
			return &customer.FieldError{Field: "cron", Reason: fmt.Sprintf("fires every %s; at most once per %s", next.Sub(prev), MinScheduleGap)}
		}
		prev = next
	}
	seen := map[string]bool{}
	for i, m := range c.Models {
		field := fmt.Sprintf("models[%d]", i)
		switch {
		case !slices.Contains(known, m):
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("unknown model %q (want one of %s)", m, strings.Join(known, ", "))}
		case seen[m]:
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("%q is listed twice", m)}
		}
		seen[m] = true
	}
	return nil
}

// Next is the first firing strictly after after (zero when the schedule is off or invalid).
func (c *ScheduleConfig) Next(after time.Time) time.Time {
	if !c.Enabled {
		return time.Time{}
	}
	sched, err := cronParser.Parse(c.Cron)
	if err != nil {
		return time.Time{}
	}
	loc, err := c.Location()
	if err != nil {
		return time.Time{}
	}
	return sched.Next(after.In(loc))
}

// Fires reports whether at is one of the schedule's firings.
func (c *ScheduleConfig) Fires(at time.Time) bool {
	next := c.Next(at.Add(-time.Second))
	return !next.IsZero() && next.Equal(at)
}
