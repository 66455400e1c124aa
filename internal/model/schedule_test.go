package model

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
)

func TestStageTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	hist := []StageEvent{
		{Entered, "未付费客户", t0},
		{Exited, "未付费客户", t0.Add(2 * day)},
		{Entered, "首单客户", t0.Add(2 * day)},
		{Exited, "首单客户", t0.Add(5 * day)},
		{Entered, "未付费客户", t0.Add(5 * day)}, // refunded: back again
		{Exited, "未付费客户", t0.Add(6 * day)},
		{Entered, "首单客户", t0.Add(6 * day)},
	}
	got := StageTimes(hist, t0.Add(10*day))
	want := []StageTime{{"未付费客户", 3, 2, false}, {"首单客户", 7, 2, true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(StageTimes(nil, t0)) != 0 {
		t.Fatal("no history has time in a stage")
	}
}

func TestDurationAccumulator(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	a := NewDurationAccumulator(t0.Add(10 * day))
	// Customer 1: A for 1 day, then B since day 1 (9 days so far).
	a.Add(1, StageEvent{Entered, "A", t0})
	a.Add(1, StageEvent{Exited, "A", t0.Add(day)})
	a.Add(1, StageEvent{Entered, "B", t0.Add(day)})
	// Customer 2: A for 3 days, then B for 2 days, then merged away.
	a.Add(2, StageEvent{Entered, "A", t0})
	a.Add(2, StageEvent{Exited, "A", t0.Add(3 * day)})
	a.Add(2, StageEvent{Entered, "B", t0.Add(3 * day)})
	a.Add(2, StageEvent{Exited, "B", t0.Add(5 * day)})
	// Customer 3: A since day 4; customer 4: A since day 8, and an old stage Z.
	a.Add(3, StageEvent{Entered, "A", t0.Add(4 * day)})
	a.Add(4, StageEvent{Entered, "Z", t0})
	a.Add(4, StageEvent{Exited, "Z", t0.Add(8 * day)})
	a.Add(4, StageEvent{Entered, "A", t0.Add(8 * day)})
	got := a.Result([]Stage{"B", "A", "C"})
	want := []StageDurations{
		{Stage: "B", Left: DurationStats{1, 2, 2}, Current: DurationStats{1, 9, 9}},
		{Stage: "A", Left: DurationStats{2, 2, 2}, Current: DurationStats{2, 4, 4}},
		{Stage: "C"},
		{Stage: "Z", Left: DurationStats{1, 8, 8}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if s := summarize([]int64{4, 1, 3, 100}); s.Count != 4 || s.MedianDays != round2(3.5/86400000) {
		t.Fatalf("even median %+v", s)
	}
}

func TestScheduleValidate(t *testing.T) {
	known := []string{"rfm", "lifecycle", "journey", "aipl"}
	def := DefaultSchedule()
	if err := def.Validate(known); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg   ScheduleConfig
		field string
	}{
		{ScheduleConfig{Cron: "0 3 * *"}, "cron"},
		{ScheduleConfig{Cron: "*/5 * * * *"}, "cron"},
		{ScheduleConfig{Cron: "@every 1m"}, "cron"},
		{ScheduleConfig{Cron: "CRON_TZ=UTC 0 3 * * *"}, "cron"},
		{ScheduleConfig{Cron: "0 3 * * *", Timezone: "Mars/Olympus"}, "timezone"},
		{ScheduleConfig{Cron: "0 3 * * *", Models: []string{"rfm", "tier"}}, "models[1]"},
		{ScheduleConfig{Cron: "0 3 * * *", Models: []string{"rfm", "rfm"}}, "models[1]"},
	} {
		if got := errField(c.cfg.Validate(known)); got != c.field {
			t.Errorf("%+v: field %q, want %q", c.cfg, got, c.field)
		}
	}
	for _, ok := range []string{"0 */6 * * *", "@daily", "30 2 * * 1", "0 3 1 * *"} {
		c := ScheduleConfig{Cron: ok}
		if err := c.Validate(known); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	empty := ScheduleConfig{}
	if err := empty.Validate(known); err != nil || empty.Cron != "0 3 * * *" || empty.Timezone != "Asia/Shanghai" {
		t.Fatalf("defaults not filled: %+v %v", empty, err)
	}
}

func TestScheduleNext(t *testing.T) {
	cfg := DefaultSchedule()
	// 2026-11-01 18:59 UTC is 02:59 on 11-02 in Shanghai: the next firing is a minute later.
	now := time.Date(2026, 11, 1, 18, 59, 0, 0, time.UTC)
	next := cfg.Next(now)
	if want := time.Date(2026, 11, 2, 3, 0, 0, 0, segment.Shanghai); !next.Equal(want) {
		t.Fatalf("next %v, want %v", next, want)
	}
	if !cfg.Fires(next) || cfg.Fires(next.Add(time.Minute)) {
		t.Fatal("Fires disagrees with Next")
	}
	if n2 := cfg.Next(next); !n2.Equal(next.Add(24 * time.Hour)) {
		t.Fatalf("the firing after %v is %v", next, n2)
	}
	cfg.Timezone = "UTC"
	if n := cfg.Next(now); !n.Equal(time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("UTC next %v", n)
	}
	cfg.Enabled = false
	if !cfg.Next(now).IsZero() || cfg.Fires(next) {
		t.Fatal("a schedule that is off fires")
	}
}

func TestRegistryAndRunAll(t *testing.T) {
	var ran []string
	mk := func(name string, err error) Recomputer {
		return Recomputer{Name: name, Run: func(context.Context, time.Time) (int, error) {
			ran = append(ran, name)
			return len(name), err
		}}
	}
	var g Registry
	g.Register(mk("rfm", nil))
	g.Register(mk("journey", errors.New("stage 2: tag 5 does not exist")))
	g.Register(mk("aipl", nil))
	g.Register(mk("rfm", nil)) // replaced in place
	if got := g.Names(); !slices.Equal(got, []string{"rfm", "journey", "aipl"}) {
		t.Fatalf("names %v", got)
	}
	res, err := RunAll(context.Background(), g.Select(nil), time.Now())
	if err == nil || !slices.Equal(ran, []string{"rfm", "journey", "aipl"}) {
		t.Fatalf("ran %v, err %v: a failing model must not stop the others", ran, err)
	}
	if res[1].Error == "" || res[2].Changed != 4 || res[0].Error != "" {
		t.Fatalf("results %+v", res)
	}
	ran = nil
	if _, err := RunAll(context.Background(), g.Select([]string{"aipl"}), time.Now()); err != nil || !slices.Equal(ran, []string{"aipl"}) {
		t.Fatalf("select: ran %v %v", ran, err)
	}
}
