package analytics

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

func day(s string) segment.Day { d, _ := segment.ParseDay(s); return d }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{3}, 3, true},
		{[]float64{2, 0.5}, 1.25, true},
		{[]float64{5, 1, 3}, 3, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
	} {
		in := fmt.Sprint(tc.in)
		got, ok := Median(tc.in)
		if got != tc.want || ok != tc.ok || fmt.Sprint(tc.in) != in {
			t.Errorf("Median(%s) = %v %v, want %v %v (input unchanged)", in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	def := LastDays(day("2024-03-10"), 30)
	if def.String() != "2024-02-10..2024-03-11" || def.Previous().String() != "2024-01-11..2024-02-10" {
		t.Errorf("default %s, previous %s", def, def.Previous())
	}
	for _, tc := range []struct{ from, to, field string }{
		{"2024-03-01", "2024-03-01", "to"},
		{"2024-03-02", "2024-03-01", "to"},
		{"2024/03/01", "", "from"},
		{"", "tomorrow", "to"},
		{"2000-01-01", "2024-01-01", "from"},
	} {
		_, err := ParsePeriod(tc.from, tc.to, def)
		var fe *customer.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("ParsePeriod(%q, %q) = %v, want an error on %s", tc.from, tc.to, err, tc.field)
		}
	}
	p, err := ParsePeriod("2024-03-01", "", def)
	if err != nil || p.String() != "2024-03-01..2024-03-11" {
		t.Errorf("from only: %s %v", p, err)
	}
}

func TestEdges(t *testing.T) {
	for _, tc := range []struct {
		g        Grain
		from, to string
		want     string
	}{
		{Month, "2024-01-15", "2024-03-02", "[2024-01-01 2024-02-01 2024-03-01 2024-04-01]"},
		{Month, "2023-12-01", "2024-01-01", "[2023-12-01 2024-01-01]"},
		{Week, "2024-02-29", "2024-03-05", "[2024-02-26 2024-03-04 2024-03-11]"}, // Thu → Mon
		{Week, "2024-03-04", "2024-03-11", "[2024-03-04 2024-03-11]"},
	} {
		var got []string
		for _, d := range tc.g.Edges(Period{day(tc.from), day(tc.to)}) {
			got = append(got, dayString(d))
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("%s %s..%s: %v, want %s", tc.g, tc.from, tc.to, got, tc.want)
		}
	}
	if Month.Label(day("2024-03-01")) != "2024-03" || Week.Label(day("2024-03-04")) != "2024-03-04" {
		t.Error("labels")
	}
}

func TestFunnelMatch(t *testing.T) {
	h := int64(3600 * 1000)
	from := time.UnixMilli(0)
	c := NewFunnelCounter([]string{"a", "b", "a", "c"}, 1, from, from.Add(48*time.Hour))
	for _, tc := range []struct {
		name   string
		events []FunnelEvent
		want   string
	}{
		{"nothing", nil, "[]"},
		{"never enters", []FunnelEvent{{"b", 1}, {"c", 2}}, "[]"},
		{"enters after the window", []FunnelEvent{{"a", 48 * h}}, "[]"},
		{"in order, repeating a step", []FunnelEvent{{"a", h}, {"b", 2 * h}, {"a", 3 * h}, {"c", 4 * h}}, fmt.Sprint([]int64{h, 2 * h, 3 * h, 4 * h})},
		{"out of order", []FunnelEvent{{"a", h}, {"c", 2 * h}, {"b", 3 * h}}, fmt.Sprint([]int64{h, 3 * h})},
		{"the first entry counts", []FunnelEvent{{"a", h}, {"a", 2 * h}, {"b", 30 * h}}, fmt.Sprint([]int64{h})},
		{"the bound is inclusive", []FunnelEvent{{"a", h}, {"b", 25 * h}, {"a", 25*h + 1}}, fmt.Sprint([]int64{h, 25 * h})},
	} {
		if got := fmt.Sprint(c.Match(tc.events)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
