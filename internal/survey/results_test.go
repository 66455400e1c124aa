package survey

import (
	"reflect"
	"testing"
	"time"
)

func TestAggregator(t *testing.T) {
	d := sample()
	agg := NewAggregator(d, time.UTC)
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	add := func(id int64, at time.Time, a Answers) { agg.Add(id, id*10, at, a) }
	h := func(v float64) *float64 { return &v }
	add(1, day, Answers{"gender": {Choices: []string{"f"}}, "hobbies": {Choices: []string{"run", "yoga"}}, "height": {Number: h(160)}, "nps": {Number: h(9)},
		"where": {Province: "广东省", City: "深圳市"}, "bday": {Text: "1990-01-02"}, "note": {Text: "<b>一</b>"}})
	add(2, day.Add(time.Hour), Answers{"gender": {Choices: []string{"f"}}, "height": {Number: h(180)}, "nps": {Number: h(7)}, "where": {Province: "广东省"}, "note": {Text: "二"}})
	add(3, day.AddDate(0, 0, 20), Answers{"gender": {Choices: []string{"m"}}, "hobbies": {Choices: []string{"yoga"}}, "height": {Number: h(170)},
		"where": {Province: "浙江省"}, "bday": {Text: "1990-07-08"}, "gone": {Text: "a removed question"}})
	r := agg.Results()
	if r.Responses != 3 {
		t.Fatalf("responses %d", r.Responses)
	}
	q := func(id string) QuestionResult {
		for _, x := range r.Questions {
			if x.ID == id {
				return x
			}
		}
		t.Fatalf("no result for %s", id)
		return QuestionResult{}
	}
	if got := q("gender").Counts; !reflect.DeepEqual(got, []Count{{"f", "女", 2}, {"m", "男", 1}}) {
		t.Errorf("gender %v", got)
	}
	if got := q("hobbies"); got.Answered != 2 || got.Counts[0].Count != 1 || got.Counts[1].Count != 2 || got.Counts[2].Count != 0 {
		t.Errorf("hobbies %+v", got)
	}
	ht := q("height")
	if *ht.Min != 160 || *ht.Max != 180 || *ht.Mean != 170 || len(ht.Bins) == 0 {
		t.Errorf("height %+v", ht)
	}
	var binned int64
	for _, b := range ht.Bins {
		binned += b.Count
	}
	if binned != 3 {
		t.Errorf("bins hold %d of 3 numbers: %+v", binned, ht.Bins)
	}
	if nps := q("nps"); len(nps.Counts) != 10 || nps.Counts[8].Count != 1 || nps.Counts[6].Count != 1 || *nps.Mean != 8 {
		t.Errorf("nps %+v", nps)
	}
	if got := q("where").Counts; !reflect.DeepEqual(got, []Count{{"广东省", "广东省", 2}, {"浙江省", "浙江省", 1}}) {
		t.Errorf("regions %v", got)
	}
	if got := q("bday").Counts; !reflect.DeepEqual(got, []Count{{"1990", "1990", 2}}) {
		t.Errorf("birth years %v", got)
	}
	if got := q("note").Latest; len(got) != 2 || got[0].Text != "二" || got[1].Text != "<b>一</b>" || got[0].CustomerID != 20 {
		t.Errorf("latest texts %+v", got)
	}
	if len(r.Daily) != 21 || r.Daily[0] != (DayCount{"2026-11-01", 2}) || r.Daily[20] != (DayCount{"2026-11-21", 1}) || r.Daily[10].Count != 0 {
		t.Errorf("daily %v", r.Daily)
	}
}

func TestDailyShowsTwoWeeksAtLeast(t *testing.T) {
	agg := NewAggregator(sample(), time.UTC)
	agg.Add(1, 1, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Answers{})
	r := agg.Results()
	if len(r.Daily) != MinDays || r.Daily[MinDays-1] != (DayCount{"2026-11-23", 1}) {
		t.Fatalf("daily %v", r.Daily)
	}
}

func TestHistogram(t *testing.T) {
	bins := Histogram([]float64{0, 9.9, 10, 55, 100}, 0, 100)
	var n int64
	for i, b := range bins {
		n += b.Count
		if i > 0 && b.From != bins[i-1].To {
			t.Fatalf("bins not contiguous: %+v", bins)
		}
	}
	if n != 5 || bins[0].From != 0 || bins[0].To != 10 || bins[0].Count != 2 || bins[len(bins)-1].Count != 1 {
		t.Fatalf("bins %+v", bins)
	}
	if one := Histogram([]float64{3, 3}, 3, 3); len(one) != 1 || one[0].Count != 2 {
		t.Fatalf("equal values: %+v", one)
	}
}
