package sop

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// Policy is the workspace's contact policy, across all SOPs: frequency caps per customer per
// channel per day, quiet hours, and how long a staff task stays open.
type Policy struct {
	// Location is the workspace time zone (default Asia/Shanghai): days, send times and quiet
	// hours are read in it.
	Location *time.Location `json:"-"`
	// QuietStart and QuietEnd bound the quiet hours (HH:MM, default 22:00–08:00): a touch that
	// falls inside is moved to QuietEnd. Equal values mean no quiet hours.
	QuietStart string `json:"quiet_start"`
	QuietEnd   string `json:"quiet_end"`
	// DailyCap is how many touches one customer gets per channel per day (default 2);
	// ChannelCaps overrides it per channel. 0 in ChannelCaps means no touches on that channel.
	DailyCap    int            `json:"daily_cap"`
	ChannelCaps map[string]int `json:"channel_caps,omitempty"`
	// TaskExpiry is how long a staff task stays open after it is due (default 72h).
	TaskExpiry Duration `json:"task_expiry"`
	// DeferDays is how many days a capped touch looks ahead for room before it is dropped
	// (default 7).
	DeferDays int `json:"defer_days"`
}

// DefaultPolicy is the policy of a new workspace.
func DefaultPolicy() Policy {
	return Policy{Location: segment.Shanghai, QuietStart: "22:00", QuietEnd: "08:00", DailyCap: 2,
		TaskExpiry: Duration(72 * time.Hour), DeferDays: 7}
}

// Validate checks a policy and fills zero values with the defaults.
func (p *Policy) Validate() error {
	def := DefaultPolicy()
	if p.Location == nil {
		p.Location = def.Location
	}
	if p.QuietStart == "" {
		p.QuietStart = def.QuietStart
	}
	if p.QuietEnd == "" {
		p.QuietEnd = def.QuietEnd
	}
	if _, err := parseClock(p.QuietStart); err != nil {
		return fieldErr("quiet_start", "%v", err)
	}
	if _, err := parseClock(p.QuietEnd); err != nil {
		return fieldErr("quiet_end", "%v", err)
	}
	if p.DailyCap < 0 {
		return fieldErr("daily_cap", "must not be negative")
	}
	if p.DailyCap == 0 {
		p.DailyCap = def.DailyCap
	}
	for ch, n := range p.ChannelCaps {
		if n < 0 {
			return fieldErr("channel_caps."+ch, "must not be negative")
		}
	}
	if p.TaskExpiry < 0 {
		return fieldErr("task_expiry", "must not be negative")
	}
	if p.TaskExpiry == 0 {
		p.TaskExpiry = def.TaskExpiry
	}
	if p.DeferDays <= 0 {
		p.DeferDays = def.DeferDays
	}
	return nil
}

// Cap is the daily cap of a channel.
func (p *Policy) Cap(channel string) int {
	if n, ok := p.ChannelCaps[channel]; ok {
		return n
	}
	return p.DailyCap
}

// OutOfQuiet moves t out of the quiet hours to their end; a time outside them is kept.
func (p *Policy) OutOfQuiet(t time.Time) time.Time {
	start, _ := parseClock(p.QuietStart)
	end, _ := parseClock(p.QuietEnd)
	if start == end {
		return t
	}
	lt := t.In(p.Location)
	m := lt.Hour()*60 + lt.Minute()
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, p.Location)
	endToday := day.Add(time.Duration(end) * time.Minute)
	if start > end { // wraps midnight: 22:00–08:00
		switch {
		case m < end:
			return endToday
		case m >= start:
			return day.AddDate(0, 0, 1).Add(time.Duration(end) * time.Minute)
		}
		return t
	}
	if m >= start && m < end {
		return endToday
	}
	return t
}

// Day is t's calendar day in the workspace time zone, YYYY-MM-DD: the unit of caps.
func (p *Policy) Day(t time.Time) string { return t.In(p.Location).Format(time.DateOnly) }

// StepTimes are the times of a spec's steps for a customer who entered at base: each step's
// delay after the previous one, moved to its time of day when it has one, then out of the
// quiet hours. Caps are applied by the planner, which knows the customer's other touches.
func (p *Policy) StepTimes(sp *Spec, base time.Time) []time.Time {
	out := make([]time.Time, len(sp.Steps))
	t := base
	for i, st := range sp.Steps {
		prev := t
		t = t.Add(time.Duration(st.Delay))
		if st.At != "" {
			t = onDayAt(t, st.At, prev, p.Location)
		}
		t = p.OutOfQuiet(t)
		out[i] = t
	}
	return out
}

// onDayAt is HH:MM on t's day, or on the next day when that is before prev (the previous
// step): "1d at 10:00" is 10:00 on the next day, whatever the hour of the previous step.
func onDayAt(t time.Time, hhmm string, prev time.Time, loc *time.Location) time.Time {
	m, _ := parseClock(hhmm)
	lt := t.In(loc)
	c := time.Date(lt.Year(), lt.Month(), lt.Day(), m/60, m%60, 0, 0, loc)
	if c.Before(prev) {
		c = c.AddDate(0, 0, 1)
	}
	return c
}

// atClock is the first time at HH:MM in loc not before t.
func atClock(t time.Time, hhmm string, loc *time.Location) time.Time {
	m, _ := parseClock(hhmm)
	lt := t.In(loc)
	c := time.Date(lt.Year(), lt.Month(), lt.Day(), m/60, m%60, 0, 0, loc)
	if c.Before(t) {
		c = time.Date(lt.Year(), lt.Month(), lt.Day()+1, m/60, m%60, 0, 0, loc)
	}
	return c
}

// cronParser reads the standard five fields (minute hour day month weekday) and descriptors
// such as @daily, as crontab(5) does.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func parseCron(expr string) (cron.Schedule, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("bad cron expression: %v", err)
	}
	return s, nil
}

// NextFire is the first firing of a schedule or date trigger after after (zero: never). For
// every_days the firings are At on the first day, then every N days after prev (the previous
// firing, zero for the first).
func (p *Policy) NextFire(t *Trigger, prev, after time.Time) time.Time {
	switch {
	case t.Kind == OnSchedule && t.Schedule != nil && t.Schedule.Cron != "":
		s, err := parseCron(t.Schedule.Cron)
		if err != nil {
			return time.Time{}
		}
		return s.Next(after.In(p.Location))
	case t.Kind == OnSchedule && t.Schedule != nil:
		if !prev.IsZero() {
			n := prev.In(p.Location).AddDate(0, 0, t.Schedule.EveryDays)
			for !n.After(after) {
				n = n.AddDate(0, 0, t.Schedule.EveryDays)
			}
			return n
		}
		return atClock(after.Add(time.Second), t.Schedule.At, p.Location)
	case t.Kind == OnDate && t.Date != nil:
		return atClock(after.Add(time.Second), t.Date.At, p.Location)
	}
	return time.Time{}
}

// BirthdaysOn are the birthday month-days (MM-DD) a date trigger fires for on day: the day
// minus the offset (3 days before a birthday fires on the birthday minus 3). In a year
// without 29 February, 28 February also fires for those born on the 29th.
func BirthdaysOn(d *DateTrigger, day time.Time) []string {
	b := day.AddDate(0, 0, -d.OffsetDays)
	out := []string{b.Format("01-02")}
	if b.Month() == time.February && b.Day() == 28 && time.Date(b.Year(), 2, 29, 0, 0, 0, 0, time.UTC).Month() != time.February {
		out = append(out, "02-29")
	}
	return out
}
