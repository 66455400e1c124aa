package store_test

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func mustTree(t *testing.T, js string) *segment.Node {
	t.Helper()
	n, err := segment.Parse([]byte(js))
	if err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	return n
}

func TestSavedSegmentsCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clock := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return clock })
		a := &store.SavedSegment{Name: "高价值", Description: "spent a lot", Tree: mustTree(t, `{"field":"region","cmp":"eq","value":"上海"}`), CreatedBy: 3}
		if err := s.CreateSegment(ctx, a); err != nil || a.ID == 0 {
			t.Fatalf("create: %v, id %d", err, a.ID)
		}
		dup := &store.SavedSegment{Name: "高价值", Tree: a.Tree}
		if err := s.CreateSegment(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate name: %v, want ErrConflict", err)
		}
		b := &store.SavedSegment{Name: "refers", Tree: mustTree(t, `{"op":"not","children":[{"segment":`+strconv.FormatInt(a.ID, 10)+`}]}`)}
		if err := s.CreateSegment(ctx, b); err != nil {
			t.Fatal(err)
		}

		got, err := s.Segment(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != a.Name || got.Description != a.Description || got.CreatedBy != 3 || !got.CreatedAt.Equal(clock) || got.LastCount != nil {
			t.Fatalf("read back %+v", got)
		}
		if !reflect.DeepEqual(got.Tree, a.Tree) {
			t.Fatalf("tree %s, want %s", got.Tree, a.Tree)
		}
		if _, err := s.Segment(ctx, 999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}

		clock = clock.Add(time.Hour)
		got.Name, got.Description = "高价值客户", ""
		if err := s.UpdateSegment(ctx, got); err != nil {
			t.Fatal(err)
		}
		got.Name = "refers"
		if err := s.UpdateSegment(ctx, got); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("rename onto a taken name: %v", err)
		}
		if err := s.UpdateSegment(ctx, &store.SavedSegment{ID: 999, Name: "x", Tree: a.Tree}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}

		list, err := s.ListSegments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "refers" || list[1].Name != "高价值客户" || !list[1].UpdatedAt.Equal(clock) {
			t.Fatalf("list %+v %+v", list[0], list[1])
		}

		// a is referred to by b: deleting it is refused, naming b.
		err = s.DeleteSegment(ctx, a.ID)
		var inUse *store.SegmentInUseError
		if !errors.As(err, &inUse) || !errors.Is(err, store.ErrConflict) || len(inUse.Referrers) != 1 || inUse.Referrers[0] != (store.SegmentRef{ID: b.ID, Name: "refers"}) {
			t.Fatalf("delete a referred segment: %v", err)
		}
		if err := s.RecordSegmentCount(ctx, b.ID, "2025-03-01", 5); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSegment(ctx, b.ID); err != nil {
			t.Fatalf("delete b (with counts): %v", err)
		}
		if err := s.DeleteSegment(ctx, a.ID); err != nil {
			t.Fatalf("delete a once b is gone: %v", err)
		}
		if err := s.DeleteSegment(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if list, _ := s.ListSegments(ctx); len(list) != 0 {
			t.Fatalf("left %d segments", len(list))
		}
	})
}

func TestSegmentCountHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a := &store.SavedSegment{Name: "a", Tree: mustTree(t, `{"field":"name","cmp":"is_set"}`)}
		b := &store.SavedSegment{Name: "b", Tree: a.Tree}
		for _, g := range []*store.SavedSegment{a, b} {
			if err := s.CreateSegment(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			id    int64
			day   string
			count int64
		}{{a.ID, "2025-02-27", 10}, {a.ID, "2025-02-28", 12}, {a.ID, "2025-03-01", 13}, {a.ID, "2025-03-01", 15}, {b.ID, "2025-03-01", 1}} {
			if err := s.RecordSegmentCount(ctx, c.id, c.day, c.count); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordSegmentCount(ctx, a.ID, "yesterday", 1); err == nil {
			t.Fatal("a malformed day was accepted")
		}
		h, err := s.SegmentCounts(ctx, a.ID, "2025-02-28")
		if err != nil {
			t.Fatal(err)
		}
		want := []store.SegmentCount{{Day: "2025-02-28", Count: 12}, {Day: "2025-03-01", Count: 15}}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("history %v, want %v (the day's last count wins)", h, want)
		}
		got, err := s.Segment(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastCount == nil || *got.LastCount != want[1] {
			t.Fatalf("last count %v", got.LastCount)
		}
		if h, _ := s.SegmentCounts(ctx, b.ID, "2025-03-02"); len(h) != 0 {
			t.Fatalf("history after the last day: %v", h)
		}
	})
}

func TestSegmentMembersPageSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		bulkCustomers(t, s, 25)
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tree := mustTree(t, `{"op":"not","children":[{"field":"name","cmp":"eq","value":"c7"}]}`)
		all, err := s.SegmentMembersSQL(ctx, tree, sch, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var paged []int64
		after := int64(0)
		for {
			page, err := s.SegmentMembersPageSQL(ctx, tree, sch, time.Now(), nil, after, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 4 {
				t.Fatalf("page of %d", len(page))
			}
			paged = append(paged, page...)
			if len(page) < 4 {
				break
			}
			after = page[len(page)-1]
		}
		if len(all) != 24 || !reflect.DeepEqual(paged, all) {
			t.Fatalf("paged %v, all %v", paged, all)
		}
	})
}
