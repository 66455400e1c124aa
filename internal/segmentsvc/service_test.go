package segmentsvc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

var ctx = context.Background()

func TestNextRecord(t *testing.T) {
	sh := segment.Shanghai
	for _, c := range []struct{ now, want time.Time }{
		{time.Date(2025, 3, 1, 0, 0, 0, 0, sh), time.Date(2025, 3, 1, 0, 5, 0, 0, sh)},
		{time.Date(2025, 3, 1, 0, 5, 0, 0, sh), time.Date(2025, 3, 2, 0, 5, 0, 0, sh)},
		{time.Date(2025, 3, 1, 23, 59, 0, 0, sh), time.Date(2025, 3, 2, 0, 5, 0, 0, sh)},
		{time.Date(2025, 12, 31, 12, 0, 0, 0, sh), time.Date(2026, 1, 1, 0, 5, 0, 0, sh)},
		// 16:04 UTC is 00:04 the next day in Shanghai.
		{time.Date(2025, 2, 28, 16, 4, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 5, 0, 0, sh)},
	} {
		if got := NextRecord(c.now, sh); !got.Equal(c.want) {
			t.Errorf("NextRecord(%v) = %v, want %v", c.now, got, c.want)
		}
	}
}

func mustParse(t *testing.T, js string) *segment.Node {
	t.Helper()
	n, err := segment.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordCountsAndCatchUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		cs := make([]*customer.Customer, 10)
		for i := range cs {
			cs[i] = &customer.Customer{ID: int64(i + 1), Name: fmt.Sprint("c", i+1), CreatedAt: time.Unix(0, 0)}
		}
		if err := st.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
			t.Fatal(err)
		}
		g := &tag.Group{Name: "g"}
		if err := st.CreateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		tg := &tag.Tag{GroupID: g.ID, Name: "t"}
		if err := st.CreateTag(ctx, tg); err != nil {
			t.Fatal(err)
		}
		clock := time.Date(2025, 3, 1, 1, 0, 0, 0, segment.Shanghai)
		svc := &Service{Store: st, Now: func() time.Time { return clock }}
		all, err := svc.Create(ctx, "all", "", mustParse(t, `{"field": "name", "cmp": "is_set"}`), 0)
		if err != nil {
			t.Fatal(err)
		}
		tagged, err := svc.Create(ctx, "tagged", "", mustParse(t, fmt.Sprintf(`{"tag": {"match": "none", "ids": [%d]}}`, tg.ID)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !svc.missingToday(ctx) {
			t.Fatal("no counts today, yet nothing is missing")
		}
		// Run catches up at once (no engine to wait for), then waits for tomorrow 00:05.
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { svc.run(runCtx, time.Minute, time.Millisecond); close(done) }()
		deadline := time.Now().Add(5 * time.Second)
		for svc.missingToday(ctx) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		h, err := st.SegmentCounts(ctx, all.ID, "2025-03-01")
		if err != nil || len(h) != 1 || h[0] != (store.SegmentCount{Day: "2025-03-01", Count: 10}) {
			t.Fatalf("after the catch-up: %v %v", h, err)
		}

		// A segment whose tag was deleted no longer validates: it is reported, the others are
		// still recorded.
		if _, err := st.DeleteTag(ctx, tg.ID, tag.Cause{Reason: tag.ReasonManual}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(24 * time.Hour)
		err = svc.RecordCounts(ctx)
		var se *segment.Error
		if !errors.As(err, &se) {
			t.Fatalf("RecordCounts with a broken segment: %v", err)
		}
		if h, _ := st.SegmentCounts(ctx, all.ID, "2025-03-02"); len(h) != 1 {
			t.Fatalf("the valid segment was not recorded: %v", h)
		}
		if h, _ := st.SegmentCounts(ctx, tagged.ID, "2025-03-02"); len(h) != 0 {
			t.Fatalf("the broken segment was recorded: %v", h)
		}
		list, _, err := svc.List(ctx, Owner{})
		if err != nil || len(list) != 2 || list[1].Count != -1 || list[0].Count != 10 {
			t.Fatalf("list with a broken segment: %+v %v", list, err)
		}

		// Before 00:05 nothing is missing yet.
		clock = time.Date(2025, 3, 5, 0, 4, 0, 0, segment.Shanghai)
		if svc.missingToday(ctx) {
			t.Fatal("missing before the recording time")
		}
	})
}

func TestCreateValidates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		svc := New(st, nil, nil)
		a, err := svc.Create(ctx, "a", "", mustParse(t, `{"field": "name", "cmp": "is_set"}`), 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.Create(ctx, "b", "", mustParse(t, fmt.Sprintf(`{"segment": %d}`, a.ID)), 1)
		if err != nil {
			t.Fatal(err)
		}
		// a → b → a.
		tree := mustParse(t, fmt.Sprintf(`{"op": "or", "children": [{"field": "name", "cmp": "is_set"}, {"segment": %d}]}`, b.ID))
		var se *segment.Error
		if _, err := svc.Update(ctx, a.ID, Patch{Tree: tree}); !errors.As(err, &se) || se.Path != "children[1].segment" {
			t.Fatalf("cycle: %v", err)
		}
		var fe *customer.FieldError
		if _, err := svc.Create(ctx, "  ", "", tree, 1); !errors.As(err, &fe) || fe.Field != "name" {
			t.Fatalf("blank name: %v", err)
		}
		var taken *NameTakenError
		if _, err := svc.Create(ctx, "a", "", tree, 1); !errors.As(err, &taken) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("taken name: %v", err)
		}
		if n, err := svc.Count(ctx, mustParse(t, `{"field": "name", "cmp": "is_set"}`), staff.OwnersScope()); err != nil || n.Count != 0 || n.Source != SourceSQL {
			t.Fatalf("a scope of nobody: %+v %v", n, err)
		}
	})
}
