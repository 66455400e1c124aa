package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

var manual = tag.Cause{By: 7, Reason: tag.ReasonManual, Ref: "console"}

func mkGroup(t testing.TB, s *store.Store, name string, kind tag.Kind, exclusive bool) *tag.Group {
	t.Helper()
	g := &tag.Group{Name: name, Kind: kind, Exclusive: exclusive}
	if err := s.CreateTagGroup(ctx, g); err != nil {
		t.Fatalf("create group %s: %v", name, err)
	}
	return g
}

func mkTag(t testing.TB, s *store.Store, groupID int64, name string) int64 {
	t.Helper()
	tg := &tag.Tag{GroupID: groupID, Name: name}
	if err := s.CreateTag(ctx, tg); err != nil {
		t.Fatalf("create tag %s: %v", name, err)
	}
	return tg.ID
}

// bulkCustomers creates customers 1..n.
func bulkCustomers(t testing.TB, s *store.Store, n int) []int64 {
	t.Helper()
	cs := make([]*customer.Customer, n)
	ids := make([]int64, n)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range cs {
		cs[i] = &customer.Customer{ID: int64(i + 1), Name: fmt.Sprintf("c%d", i+1), CreatedAt: at}
		ids[i] = int64(i + 1)
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
		t.Fatal(err)
	}
	return ids
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *customer.FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("got %v, want a field error on %q", err, field)
	}
}

func tagIDsOf(t *testing.T, s *store.Store, customerID int64) []int64 {
	t.Helper()
	as, err := s.CustomerTags(ctx, customerID)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	for _, a := range as {
		ids = append(ids, a.Tag.ID)
	}
	return ids
}

func TestTagGroupAndTagValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		wantField(t, s.CreateTagGroup(ctx, &tag.Group{Name: " 跟进状态 "}), "name")
		wantField(t, s.CreateTagGroup(ctx, &tag.Group{Name: "x", Kind: "nope"}), "kind")
		wantField(t, s.CreateTagGroup(ctx, &tag.Group{Name: "  "}), "name")
		other := &tag.Group{Name: "其他"}
		if err := s.CreateTagGroup(ctx, other); err != nil || other.Kind != tag.Custom {
			t.Fatalf("create with default kind: %v, kind %q", err, other.Kind)
		}
		mkTag(t, s, g.ID, "待跟进")
		wantField(t, s.CreateTag(ctx, &tag.Tag{GroupID: g.ID, Name: "待跟进"}), "name")
		wantField(t, s.CreateTag(ctx, &tag.Tag{GroupID: 999, Name: "x"}), "group_id")
		wantField(t, s.CreateTag(ctx, &tag.Tag{GroupID: g.ID, Name: "y", Color: "red"}), "color")
		mkTag(t, s, other.ID, "待跟进") // the same name in another group is fine
		err := s.UpdateTagGroup(ctx, &tag.Group{ID: other.ID, Name: "跟进状态", Kind: tag.Custom})
		wantField(t, err, "name")
		if err := s.UpdateTagGroup(ctx, &tag.Group{ID: 999, Name: "z", Kind: tag.Custom}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing group: %v", err)
		}
	})
}

func TestRenameKeepsAssignmentsAndOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		src := mkGroup(t, s, "来源", tag.Source, false)
		attr := mkGroup(t, s, "属性", tag.Attribute, false)
		qr := mkTag(t, s, src.ID, "渠道活码")
		live := mkTag(t, s, src.ID, "直播")
		mom := mkTag(t, s, attr.ID, "宝妈")
		c := bulkCustomers(t, s, 1)[0]
		if _, err := s.AssignTags(ctx, []int64{c}, []int64{qr, mom}, manual); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateTag(ctx, &tag.Tag{ID: qr, Name: "门店活码", Color: "#ff8800"}); err != nil {
			t.Fatal(err)
		}
		wantField(t, s.UpdateTag(ctx, &tag.Tag{ID: qr, Name: "直播"}), "name")
		as, err := s.CustomerTags(ctx, c)
		if err != nil || len(as) != 2 || as[0].Tag.Name != "门店活码" || as[0].Tag.Color != "#ff8800" || as[0].GroupName != "来源" || as[0].GroupKind != tag.Source || as[1].Tag.ID != mom {
			t.Fatalf("customer tags after rename: %+v, %v", as, err)
		}
		if err := s.ReorderTagGroups(ctx, []int64{attr.ID, src.ID}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReorderTags(ctx, src.ID, []int64{live, qr}); err != nil {
			t.Fatal(err)
		}
		wantField(t, s.ReorderTagGroups(ctx, []int64{attr.ID}), "ids")
		wantField(t, s.ReorderTags(ctx, src.ID, []int64{live, mom}), "ids[1]")
		groups, err := s.ListTagGroups(ctx)
		if err != nil || len(groups) != 2 || groups[0].ID != attr.ID || groups[1].Tags[0].ID != live || groups[1].Tags[1].Name != "门店活码" {
			t.Fatalf("groups: %+v, %v", groups, err)
		}
		if got := tagIDsOf(t, s, c); got[0] != mom || got[1] != qr {
			t.Fatalf("customer tags in the new order: %v", got)
		}
	})
}

func TestAssignIsIdempotentAndHistoryRecordsWhoWhenWhy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		g := mkGroup(t, s, "营销活动", tag.Campaign, false)
		x := mkTag(t, s, g.ID, "618大促")
		c := bulkCustomers(t, s, 1)[0]
		ch, err := s.AssignTag(ctx, c, x, manual)
		if err != nil || len(ch) != 1 || ch[0] != (tag.Change{CustomerID: c, TagID: x, Action: tag.Add}) {
			t.Fatalf("assign: %v, %v", ch, err)
		}
		now = now.Add(time.Hour)
		if ch, err := s.AssignTag(ctx, c, x, tag.Cause{Reason: tag.ReasonImport}); err != nil || len(ch) != 0 {
			t.Fatalf("assign again: %v, %v; want no change", ch, err)
		}
		as, _ := s.CustomerTags(ctx, c)
		if len(as) != 1 || as[0].Reason != tag.ReasonManual || as[0].By != 7 || !as[0].AssignedAt.Equal(now.Add(-time.Hour)) {
			t.Fatalf("assignment changed by a no-op: %+v", as)
		}
		if ch, err := s.RemoveTag(ctx, c, x, tag.Cause{Reason: tag.ReasonSurvey, Ref: "survey:3"}); err != nil || len(ch) != 1 {
			t.Fatalf("remove: %v, %v", ch, err)
		}
		if ch, err := s.RemoveTag(ctx, c, x, manual); err != nil || len(ch) != 0 {
			t.Fatalf("remove again: %v, %v", ch, err)
		}
		h, err := s.TagHistory(ctx, c, 0, 0)
		if err != nil || len(h) != 2 {
			t.Fatalf("history: %+v, %v", h, err)
		}
		rm, add := h[0], h[1]
		if add.Action != tag.Add || add.By != 7 || add.Reason != tag.ReasonManual || add.Ref != "console" || !add.At.Equal(now.Add(-time.Hour)) || add.TagName != "618大促" || add.GroupName != "营销活动" {
			t.Errorf("add entry: %+v", add)
		}
		if rm.Action != tag.Remove || rm.By != 0 || rm.Reason != tag.ReasonSurvey || rm.Ref != "survey:3" || !rm.At.Equal(now) {
			t.Errorf("remove entry: %+v", rm)
		}
		if h2, _ := s.TagHistory(ctx, c, h[0].ID, 10); len(h2) != 1 || h2[0].ID != add.ID {
			t.Errorf("history page before %d: %+v", h[0].ID, h2)
		}
		if _, err := s.AssignTag(ctx, 999, x, manual); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("assign to a missing customer: %v", err)
		}
		_, err = s.AssignTag(ctx, c, 999, manual)
		wantField(t, err, "tag_ids[0]")
		_, err = s.AssignTag(ctx, c, x, tag.Cause{Reason: "whim"})
		wantField(t, err, "reason")

		// Deleting the tag keeps its name (and group's) in the history, marked deleted.
		if _, err := s.AssignTag(ctx, c, x, manual); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteTag(ctx, x, manual); err != nil {
			t.Fatal(err)
		}
		h, err = s.TagHistory(ctx, c, 0, 0)
		if err != nil || len(h) != 4 {
			t.Fatalf("history after delete: %+v, %v", h, err)
		}
		for _, e := range h {
			if e.TagName != "618大促" || e.GroupName != "营销活动" || !e.TagDeleted {
				t.Errorf("entry of a deleted tag: %+v", e)
			}
		}
		if h[0].Action != tag.Remove {
			t.Errorf("deleting a held tag records a removal first: %+v", h[0])
		}
	})
}

func TestSingleChoiceGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		g := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		todo := mkTag(t, s, g.ID, "待跟进")
		added := mkTag(t, s, g.ID, "已加微")
		won := mkTag(t, s, g.ID, "已成交")
		free := mkGroup(t, s, "属性", tag.Attribute, false)
		mom := mkTag(t, s, free.ID, "宝妈")
		c := bulkCustomers(t, s, 1)[0]
		if _, err := s.AssignTags(ctx, []int64{c}, []int64{todo, mom}, manual); err != nil {
			t.Fatal(err)
		}
		rule := tag.Cause{Reason: tag.ReasonRule, Ref: "rule:1"}
		ch, err := s.AssignTag(ctx, c, won, rule)
		if err != nil || len(ch) != 2 || ch[0] != (tag.Change{CustomerID: c, TagID: todo, Action: tag.Remove}) || ch[1].TagID != won {
			t.Fatalf("assign 已成交: %v, %v", ch, err)
		}
		if got := tagIDsOf(t, s, c); len(got) != 2 || got[0] != won || got[1] != mom {
			t.Fatalf("tags %v, want 已成交 and 宝妈", got)
		}
		h, _ := s.TagHistory(ctx, c, 0, 0)
		if h[0].Action != tag.Add || h[0].TagID != won || h[1].Action != tag.Remove || h[1].TagID != todo || h[1].Reason != tag.ReasonRule || h[1].Ref != "rule:1" {
			t.Fatalf("history: %+v", h)
		}
		_, err = s.AssignTags(ctx, []int64{c}, []int64{added, todo}, manual)
		wantField(t, err, "tag_ids[1]")
		err = s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ChangeTags([]int64{c}, []int64{mom}, []int64{mom}, manual)
			return err
		})
		wantField(t, err, "tag_ids[0]")
	})
}

func TestBulkAssignAndRemove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		const n = 12000 // more than two statements' worth of customers
		ids := bulkCustomers(t, s, n)
		g := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		a, b := mkTag(t, s, g.ID, "A"), mkTag(t, s, g.ID, "B")
		vip := mkTag(t, s, mkGroup(t, s, "属性", tag.Attribute, false).ID, "VIP")
		half := ids[:n/2]
		ch, err := s.AssignTags(ctx, half, []int64{a}, manual)
		if err != nil || len(ch) != n/2 {
			t.Fatalf("assign A to half: %d changes, %v", len(ch), err)
		}
		// B to everyone (and to a customer that does not exist): A leaves the first half.
		ch, err = s.AssignTags(ctx, append(ids, 999999, ids[0]), []int64{b, vip}, tag.Cause{Reason: tag.ReasonImport, Ref: "import:1"})
		if err != nil {
			t.Fatal(err)
		}
		if add, rm := tag.Counts(ch); add != 2*n || rm != n/2 {
			t.Fatalf("assign B and VIP: %d added, %d removed; want %d, %d", add, rm, 2*n, n/2)
		}
		if ch, _ := s.AssignTags(ctx, ids, []int64{b, vip}, manual); len(ch) != 0 {
			t.Fatalf("assign again: %d changes", len(ch))
		}
		counts, err := s.TagCounts(ctx)
		if err != nil || counts[a] != 0 || counts[b] != n || counts[vip] != n {
			t.Fatalf("counts %v, %v", counts, err)
		}
		ch, err = s.RemoveTags(ctx, ids[:7000], []int64{vip}, manual)
		if err != nil || len(ch) != 7000 {
			t.Fatalf("remove: %d, %v", len(ch), err)
		}
		if counts, _ := s.TagCounts(ctx); counts[vip] != n-7000 {
			t.Fatalf("VIP count %d", counts[vip])
		}
		h, _ := s.TagHistory(ctx, ids[0], 0, 0)
		if len(h) != 5 { // +A, -A, +B, +VIP, -VIP
			t.Fatalf("history of customer 1: %+v", h)
		}
	})
}

func TestDeleteGroupWithItsTags(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 3)
		g := mkGroup(t, s, "营销活动", tag.Campaign, false)
		x, y := mkTag(t, s, g.ID, "双11"), mkTag(t, s, g.ID, "618")
		keep := mkTag(t, s, mkGroup(t, s, "属性", tag.Attribute, false).ID, "学生")
		s.AssignTags(ctx, ids, []int64{x, keep}, manual)
		s.AssignTags(ctx, ids[:1], []int64{y}, manual)
		_, err := s.DeleteTagGroup(ctx, g.ID, tag.GroupDeletion{})
		wantField(t, err, "mode")
		ch, err := s.DeleteTagGroup(ctx, g.ID, tag.GroupDeletion{Mode: tag.DeleteTags, Cause: tag.Cause{By: 2, Reason: tag.ReasonManual, Ref: "delete group"}})
		if err != nil || len(ch) != 4 {
			t.Fatalf("delete group: %v, %v", ch, err)
		}
		if _, err := s.TagGroup(ctx, g.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("group still there: %v", err)
		}
		if _, err := s.Tag(ctx, x); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("tag still there: %v", err)
		}
		if got := tagIDsOf(t, s, ids[0]); len(got) != 1 || got[0] != keep {
			t.Fatalf("tags left: %v", got)
		}
		h, _ := s.TagHistory(ctx, ids[0], 0, 0)
		removals := 0
		for _, e := range h {
			if e.Action == tag.Remove {
				removals++
				// The deleted tags keep their names and group in the history.
				if e.By != 2 || e.Ref != "delete group" || !e.TagDeleted || e.GroupName != "营销活动" || (e.TagName != "双11" && e.TagName != "618") {
					t.Errorf("removal entry %+v", e)
				}
			}
		}
		if removals != 2 {
			t.Fatalf("history %+v: want two removals", h)
		}
		ch, err = s.DeleteTag(ctx, keep, manual)
		if err != nil || len(ch) != 3 {
			t.Fatalf("delete tag: %v, %v", ch, err)
		}
		if counts, _ := s.TagCounts(ctx); len(counts) != 0 {
			t.Fatalf("counts after deletes: %v", counts)
		}
	})
}

func TestDeleteGroupMovingItsTags(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 4)
		old := mkGroup(t, s, "旧状态", tag.FollowUp, false)
		o1, o2 := mkTag(t, s, old.ID, "意向"), mkTag(t, s, old.ID, "沉默")
		status := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		s1 := mkTag(t, s, status.ID, "待跟进")
		free := mkGroup(t, s, "自定义", tag.Custom, false)
		mkTag(t, s, free.ID, "沉默")
		s.AssignTags(ctx, ids[:2], []int64{o1}, manual)
		s.AssignTags(ctx, ids[1:3], []int64{s1}, manual) // customer 2 would hold 意向 and 待跟进
		s.AssignTags(ctx, ids[3:], []int64{o2}, manual)

		_, err := s.DeleteTagGroup(ctx, old.ID, tag.GroupDeletion{Mode: tag.MoveTags, Into: status.ID})
		var ce *tag.ExclusiveConflictError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.Customers != 1 || ce.Group != "跟进状态" {
			t.Fatalf("move into a single-choice group: %v", err)
		}
		_, err = s.DeleteTagGroup(ctx, old.ID, tag.GroupDeletion{Mode: tag.MoveTags, Into: free.ID})
		wantField(t, err, "into") // 沉默 exists there
		_, err = s.DeleteTagGroup(ctx, old.ID, tag.GroupDeletion{Mode: tag.MoveTags, Into: 999})
		wantField(t, err, "into")
		if _, err := s.TagGroup(ctx, old.ID); err != nil {
			t.Fatalf("refused deletions must leave the group: %v", err)
		}

		if _, err := s.RemoveTag(ctx, ids[1], s1, manual); err != nil {
			t.Fatal(err)
		}
		ch, err := s.DeleteTagGroup(ctx, old.ID, tag.GroupDeletion{Mode: tag.MoveTags, Into: status.ID})
		if err != nil || len(ch) != 0 {
			t.Fatalf("move: %v, %v", ch, err)
		}
		g, err := s.TagGroup(ctx, status.ID)
		if err != nil || len(g.Tags) != 3 || g.Tags[0].ID != s1 || g.Tags[1].ID != o1 || g.Tags[2].ID != o2 {
			t.Fatalf("target group: %+v, %v", g, err)
		}
		if got := tagIDsOf(t, s, ids[0]); len(got) != 1 || got[0] != o1 {
			t.Fatalf("moved tags keep assignments: %v", got)
		}
		// The moved tags now follow the target's single choice.
		if _, err := s.AssignTag(ctx, ids[0], s1, manual); err != nil {
			t.Fatal(err)
		}
		if got := tagIDsOf(t, s, ids[0]); len(got) != 1 || got[0] != s1 {
			t.Fatalf("after assigning 待跟进: %v", got)
		}
	})
}

func TestMakingGroupSingleChoiceChecksCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 3)
		g := mkGroup(t, s, "等级", tag.Attribute, false)
		a, b := mkTag(t, s, g.ID, "金卡"), mkTag(t, s, g.ID, "银卡")
		s.AssignTags(ctx, ids[:2], []int64{a, b}, manual)
		g.Exclusive = true
		err := s.UpdateTagGroup(ctx, g)
		var ce *tag.ExclusiveConflictError
		if !errors.As(err, &ce) || ce.Customers != 2 {
			t.Fatalf("make single-choice: %v", err)
		}
		s.RemoveTags(ctx, ids, []int64{b}, manual)
		if err := s.UpdateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TagGroup(ctx, g.ID); !got.Exclusive {
			t.Fatal("group not single-choice")
		}
	})
}

func TestMergeMovesTagsAndHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 2)
		from, into := ids[0], ids[1]
		status := mkGroup(t, s, "跟进状态", tag.FollowUp, true)
		todo, won := mkTag(t, s, status.ID, "待跟进"), mkTag(t, s, status.ID, "已成交")
		attr := mkGroup(t, s, "属性", tag.Attribute, false)
		mom, student := mkTag(t, s, attr.ID, "宝妈"), mkTag(t, s, attr.ID, "学生")
		s.AssignTags(ctx, []int64{from}, []int64{todo, mom, student}, manual)
		s.AssignTags(ctx, []int64{into}, []int64{won, mom}, manual)
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.Merge(from, into, "test") }); err != nil {
			t.Fatal(err)
		}
		if got := tagIDsOf(t, s, from); len(got) != 0 {
			t.Fatalf("merged-away customer keeps tags %v", got)
		}
		got := tagIDsOf(t, s, into)
		if len(got) != 3 || got[0] != won || got[1] != mom || got[2] != student {
			t.Fatalf("survivor's tags %v, want 已成交, 宝妈, 学生", got)
		}
		h, _ := s.TagHistory(ctx, into, 0, 0)
		if len(h) != 6 || h[0].Action != tag.Remove || h[0].TagID != todo || h[0].Reason != tag.ReasonMerge || h[0].Ref != fmt.Sprintf("merge:%d", from) {
			t.Fatalf("survivor's history: %+v", h)
		}
		if counts, _ := s.TagCounts(ctx); counts[mom] != 1 || counts[todo] != 0 {
			t.Fatalf("counts %v", counts)
		}
		if _, err := s.AssignTag(ctx, from, mom, manual); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("tagging a merged-away customer: %v", err)
		}
	})
}

func TestTagChangesArePublished(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 3)
		x := mkTag(t, s, mkGroup(t, s, "属性", tag.Attribute, false).ID, "x")
		var got []int64
		s.Subscribe(func(c *store.Changes) { got = append(got, c.Customers...) })
		s.AssignTags(ctx, ids[:2], []int64{x}, manual)
		if len(got) != 2 {
			t.Fatalf("published customers %v", got)
		}
		got = nil
		s.AssignTags(ctx, ids[:2], []int64{x}, manual)
		if len(got) != 0 {
			t.Fatalf("a no-op published %v", got)
		}
	})
}

// BenchmarkBulkTags100k assigns one tag to 100,000 customers and removes it again: two
// transactions, 200,000 history rows.
func BenchmarkBulkTags100k(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			ids := bulkCustomers(b, s, 100000)
			x := mkTag(b, s, mkGroup(b, s, "属性", tag.Attribute, false).ID, "x")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ch, err := s.AssignTags(ctx, ids, []int64{x}, manual); err != nil || len(ch) != len(ids) {
					b.Fatalf("assign: %d, %v", len(ch), err)
				}
				if ch, err := s.RemoveTags(ctx, ids, []int64{x}, manual); err != nil || len(ch) != len(ids) {
					b.Fatalf("remove: %d, %v", len(ch), err)
				}
			}
		})
	}
}
