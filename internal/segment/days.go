package segment

import (
	"math"
	"time"
)

// Shanghai is the default workspace time zone. time.LoadLocation needs zone data, so fall back
// to a fixed UTC+8 (China has no daylight saving time).
var Shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}()

// Day is a calendar day in the workspace time zone, counted from 1970-01-01.
type Day int32

// NoDay marks an unset date.
const NoDay Day = math.MinInt32

// DayOf returns the day of an instant in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return DayOfDate(y, m, d)
}

// DayOfDate returns the day of a calendar date.
func DayOfDate(y int, m time.Month, d int) Day {
	return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// ParseDay parses YYYY-MM-DD.
func ParseDay(s string) (Day, bool) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return NoDay, false
	}
	return Day(t.Unix() / 86400), true
}

// Date returns the calendar date of a day.
func (d Day) Date() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// Start returns the first instant of the day in loc.
func (d Day) Start(loc *time.Location) time.Time {
	y, m, dd := d.Date().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc)
}

// Range is an inclusive range of days; From or To may be open (NoDay / math.MaxInt32).
type Range struct{ From, To Day }

// Open bounds.
const (
	MinDay Day = math.MinInt32 + 1
	MaxDay Day = math.MaxInt32
)

// Resolve turns a window into days relative to today; a nil window is all time.
func (w *Window) Resolve(today Day) Range {
	if w == nil {
		return Range{MinDay, MaxDay}
	}
	if w.LastDays > 0 {
		return Range{today - Day(w.LastDays) + 1, today}
	}
	r := Range{MinDay, MaxDay}
	if d, ok := ParseDay(w.From); ok {
		r.From = d
	}
	if d, ok := ParseDay(w.To); ok {
		r.To = d
	}
	return r
}

// DateRange turns a date comparison (on, before, after, between, in_last_days,
// more_than_days_ago, in_next_days) into the inclusive range of days it accepts.
func DateRange(cmp string, value any, today Day) Range {
	day := func(v any) Day {
		s, _ := v.(string)
		d, _ := ParseDay(s)
		return d
	}
	n := func() Day { f, _ := value.(float64); return Day(f) }
	switch cmp {
	case "on":
		d := day(value)
		return Range{d, d}
	case "before":
		return Range{MinDay, day(value) - 1}
	case "after":
		return Range{day(value) + 1, MaxDay}
	case "between":
		l, _ := value.([]any)
		if len(l) == 2 {
			return Range{day(l[0]), day(l[1])}
		}
	case "in_last_days":
		return Range{today - n() + 1, today}
	case "more_than_days_ago":
		return Range{MinDay, today - n() - 1}
	case "in_next_days":
		return Range{today, today + n() - 1}
	}
	return Range{MaxDay, MinDay} // empty
}

// Contains reports whether d is in r.
func (r Range) Contains(d Day) bool { return d != NoDay && d >= r.From && d <= r.To }

// Anniversaries returns the month-day keys (month*100+day) of the next n days from today, for
// "birthday in the next n days". A 29 February date counts on 28 February in common years.
func Anniversaries(today Day, n int) map[int]bool {
	keys := map[int]bool{}
	for i := 0; i < n && i < 366; i++ {
		t := (today + Day(i)).Date()
		keys[int(t.Month())*100+t.Day()] = true
		if t.Month() == time.February && t.Day() == 28 && !isLeap(t.Year()) {
			keys[229] = true
		}
	}
	return keys
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// MonthDay returns month*100+day of a day.
func (d Day) MonthDay() int {
	t := d.Date()
	return int(t.Month())*100 + t.Day()
}
