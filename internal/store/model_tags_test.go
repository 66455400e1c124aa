package store_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// classesOf maps every live customer to its class in scores (未消费 without a row).
func classesOf(t *testing.T, s *store.Store, scores []model.Score) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	rows, err := s.DB().QueryContext(ctx, `SELECT id FROM customers WHERE merged_into IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = string(model.NoPurchase)
	}
	for _, sc := range scores {
		out[sc.CustomerID] = string(sc.Class)
	}
	return out
}

// modelTagsOf maps customers to the names of the tags they hold in group g.
func modelTagsOf(t *testing.T, s *store.Store, g int64) map[int64][]string {
	t.Helper()
	out := map[int64][]string{}
	rows, err := s.DB().QueryContext(ctx, s.Rebind(`SELECT ct.customer_id, t.name FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.group_id = ?`), g)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		out[id] = append(out[id], name)
	}
	return out
}

func countModelRows(t *testing.T, s *store.Store, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRowContext(ctx, s.Rebind(query), args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRFMClassChangedAndTags: the first RFM run places everyone silently; a later run stores one
// "RFM Class Changed" event per customer whose class moved (from, to, run id), hands them to
// the model-events hook, and moves the RFM tags with them; re-running over unchanged data
// changes nothing; turning the tags off takes them away, recorded in the history.
func TestRFMClassChangedAndTags(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		asOf := segment.DayOfDate(2026, time.November, 1)
		now := (asOf + 1).Start(segment.Shanghai).Add(-time.Hour)
		s.SetClock(func() time.Time { return now })
		rfmData(t, s, rand.New(rand.NewPCG(3, 4)), 300, asOf, 90)
		var hooked []*event.Event
		s.OnModelEvents(func(tx *store.Tx, evts []*event.Event) error { hooked = append(hooked, evts...); return nil })

		if _, err := s.SetModelTags(ctx, "rfm", model.TagConfig{Enabled: true}); err != nil {
			t.Fatal(err)
		}
		st, err := s.ModelTags(ctx, "rfm")
		if err != nil || st.GroupName != "RFM 分类" || len(st.Tags) != len(model.Classes) {
			t.Fatalf("tags before any run: %+v, %v", st, err)
		}
		cfg := model.DefaultRFMConfig()
		run1, first, _, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now)
		if err != nil {
			t.Fatal(err)
		}
		if n := countModelRows(t, s, `SELECT COUNT(*) FROM events WHERE name = ?`, store.RFMClassChangedEvent); n != 0 || len(hooked) != 0 {
			t.Errorf("the first run stored %d class-changed events (hook saw %d), want none", n, len(hooked))
		}
		want := classesOf(t, s, first)
		check := func(when string) {
			t.Helper()
			got := modelTagsOf(t, s, st.GroupID)
			for id, class := range want {
				if tags := got[id]; len(tags) != 1 || tags[0] != class {
					t.Fatalf("%s: customer %d holds %v, want [%s]", when, id, tags, class)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d customers hold RFM tags, want %d", when, len(got), len(want))
			}
		}
		check("after the first run")
		history := countModelRows(t, s, `SELECT COUNT(*) FROM tag_history WHERE reason = 'model'`)
		if history != int64(len(want)) || countModelRows(t, s, `SELECT COUNT(*) FROM tag_history WHERE ref = ?`, model.TagRef("rfm", run1.ID)) != history {
			t.Errorf("history: %d rows with reason model, want %d with ref %s", history, len(want), model.TagRef("rfm", run1.ID))
		}

		// Same data again: nothing new anywhere.
		if _, _, saved, err := model.RunRFM(ctx, s, cfg, asOf, segment.Shanghai, now.Add(time.Hour)); err != nil || saved {
			t.Fatalf("re-run: saved %v, %v", saved, err)
		}
		if n := countModelRows(t, s, `SELECT COUNT(*) FROM tag_history`); n != history {
			t.Errorf("a re-run over unchanged data wrote %d history rows", n-history)
		}

		// A month later classes move.
		run2, second, saved, err := model.RunRFM(ctx, s, cfg, asOf+30, segment.Shanghai, now.Add(30*24*time.Hour))
		if err != nil || !saved {
			t.Fatalf("second run: saved %v, %v", saved, err)
		}
		next := classesOf(t, s, second)
		moved := 0
		for id, c := range next {
			if want[id] != c {
				moved++
			}
		}
		if moved == 0 {
			t.Fatal("no customer changed class: the data does not test anything")
		}
		rows, err := s.DB().QueryContext(ctx, s.Rebind(`SELECT customer_id, message_id, properties FROM events WHERE name = ?`), store.RFMClassChangedEvent)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id int64
			var mid, props string
			if err := rows.Scan(&id, &mid, &props); err != nil {
				t.Fatal(err)
			}
			n++
			props = strings.ReplaceAll(props, `": `, `":`) // PostgreSQL's jsonb text has spaces
			if mid != "rfm:"+strconv.FormatInt(run2.ID, 10)+":"+strconv.FormatInt(id, 10) || !strings.Contains(props, `"from":"`+want[id]+`"`) || !strings.Contains(props, `"to":"`+next[id]+`"`) {
				t.Errorf("event of customer %d: %s %s (from %s to %s)", id, mid, props, want[id], next[id])
			}
		}
		rows.Close()
		if n != moved || len(hooked) != moved {
			t.Errorf("%d class-changed events stored, hook saw %d; %d customers moved", n, len(hooked), moved)
		}
		want = next
		check("after the second run")
		if got := countModelRows(t, s, `SELECT COUNT(*) FROM tag_history WHERE ref = ? AND action = 'add'`, model.TagRef("rfm", run2.ID)); got != int64(moved) {
			t.Errorf("%d tags added by the second run, want %d (one per move)", got, moved)
		}

		// Off: the tags go, the group stays.
		changes, err := s.SetModelTags(ctx, "rfm", model.TagConfig{Enabled: false})
		if err != nil {
			t.Fatal(err)
		}
		if _, removed := tag.Counts(changes); removed != len(want) || len(modelTagsOf(t, s, st.GroupID)) != 0 {
			t.Errorf("turning tags off removed %d, want %d", removed, len(want))
		}
		if _, err := s.SetModelTags(ctx, "nope", model.TagConfig{Enabled: true}); !isField(err, "model") {
			t.Errorf("unknown model: %v", err)
		}
	})
}

// TestTierChangedEvents: a tier change is a "Tier Changed" event with its direction along the
// ladder, besides Stage Exited/Entered; the tier tags follow; nothing repeats on a re-run.
func TestTierChangedEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		rfmData(t, s, rand.New(rand.NewPCG(5, 6)), 3, segment.DayOf(now, segment.Shanghai), 90)
		var hooked []string
		s.OnModelEvents(func(tx *store.Tx, evts []*event.Event) error {
			for _, e := range evts {
				hooked = append(hooked, e.Name)
			}
			return nil
		})
		if _, err := s.SetModelTags(ctx, "tier", model.TagConfig{Enabled: true, GroupName: "会员等级（模型）"}); err != nil {
			t.Fatal(err)
		}
		place := func(at time.Time, a, b model.Stage) {
			t.Helper()
			if _, err := s.ApplyStages(ctx, "tier", []model.StageAssignment{{CustomerID: 1, Stage: a}, {CustomerID: 2, Stage: b}}, at); err != nil {
				t.Fatal(err)
			}
		}
		place(now, "普通会员", "中级会员")
		place(now.Add(time.Hour), "初级会员", "普通会员")
		place(now.Add(2*time.Hour), "初级会员", "普通会员")
		rows, err := s.DB().QueryContext(ctx, s.Rebind(`SELECT customer_id, properties FROM events WHERE name = ? ORDER BY customer_id`), store.TierChangedEvent)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id int64
			var props string
			if err := rows.Scan(&id, &props); err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.ReplaceAll(props, `": `, `":`))
		}
		rows.Close()
		if len(got) != 2 || !strings.Contains(got[0], `"direction":"up"`) || !strings.Contains(got[0], `"to":"初级会员"`) || !strings.Contains(got[1], `"direction":"down"`) {
			t.Errorf("tier events: %v", got)
		}
		// Stage Exited + Stage Entered + Tier Changed for each of the two moves.
		if len(hooked) != 6 {
			t.Errorf("the hook saw %v", hooked)
		}
		st, _ := s.ModelTags(ctx, "tier")
		tags := modelTagsOf(t, s, st.GroupID)
		if len(tags[1]) != 1 || tags[1][0] != "初级会员" || len(tags[2]) != 1 || tags[2][0] != "普通会员" {
			t.Errorf("tier tags: %v", tags)
		}
	})
}
