package audience_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

func str(s string) *string { return &s }

// fixedNow is 2026-11-23 20:30 in Shanghai.
var fixedNow = time.Date(2026, 11, 23, 20, 30, 0, 0, segment.Shanghai)

func newCustomer(t *testing.T, s *store.Store, user string, p *customer.Patch) int64 {
	t.Helper()
	var id int64
	err := s.InTx(ctx, func(tx *store.Tx) error {
		r, err := tx.Resolve([]customer.Identity{{Kind: customer.UserID, Value: user}}, "test")
		if err != nil {
			return err
		}
		id = r.CustomerID
		if err := tx.CheckPatch(p); err != nil {
			return err
		}
		return tx.ApplyPatch(id, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func track(t *testing.T, s *store.Store, id int64, name string, at time.Time) {
	t.Helper()
	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertEvents([]*event.Event{{MessageID: fmt.Sprintf("%d-%s-%d", id, name, at.UnixNano()), CustomerID: id, Type: "track", Name: name, Timestamp: at}})
		if err != nil {
			return err
		}
		return tx.TouchLastSeen(id, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func order(t *testing.T, s *store.Store, id int64, oid string, yuan float64, at time.Time) {
	t.Helper()
	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.UpsertOrder(&event.Order{OrderID: oid, CustomerID: id, AmountMinor: event.MinorUnits(yuan, "CNY"), Currency: "CNY", PaidAt: at})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func members(t *testing.T, e *audience.Engine, src string) []int64 {
	t.Helper()
	n, err := segment.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := e.Members(ctx, n, nil, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func same(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEngineRebuildAndIncrementalAgree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		s.SetClock(func() time.Time { return fixedNow })
		day := func(daysAgo int, hour int) time.Time {
			return time.Date(2026, 11, 23-daysAgo, hour, 0, 0, 0, segment.Shanghai)
		}
		a := newCustomer(t, s, "a", &customer.Patch{Name: str("王芳"), Gender: str("female"), Source: str("抖音"), Birthday: str("1990-11-25"), Attrs: map[string]any{"income": 12000.0, "hobbies": []any{"瑜伽"}}})
		b := newCustomer(t, s, "b", &customer.Patch{Name: str("李雷"), Gender: str("male"), Source: str("小红书"), Attrs: map[string]any{"income": 3000.0}})
		c := newCustomer(t, s, "c", &customer.Patch{Name: str("王小明"), Source: str("抖音"), OptOut: map[string]bool{"sms": true}})
		track(t, s, a, "加企微", day(40, 10))
		track(t, s, a, "入群", day(2, 21))
		track(t, s, a, "入群", day(1, 21))
		track(t, s, b, "入群", day(5, 9))
		order(t, s, a, "o1", 199, day(3, 20))
		order(t, s, a, "o2", 99.5, day(100, 20))
		order(t, s, b, "o3", 50, day(10, 12))

		e := audience.New(s, audience.Options{Now: func() time.Time { return fixedNow }})
		if err := e.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		s.Subscribe(e.Apply)
		cases := []struct {
			tree string
			want []int64
		}{
			{`{"field":"gender","cmp":"eq","value":"female"}`, []int64{a}},
			{`{"field":"gender","cmp":"ne","value":"female"}`, []int64{b, c}},
			{`{"field":"name","cmp":"starts_with","value":"王"}`, []int64{a, c}},
			{`{"field":"attrs.income","cmp":"gte","value":5000}`, []int64{a}},
			{`{"field":"attrs.income","cmp":"is_not_set"}`, []int64{c}},
			{`{"field":"attrs.hobbies","cmp":"contains","value":"瑜伽"}`, []int64{a}},
			{`{"field":"birthday","cmp":"anniversary_in_next_days","value":3}`, []int64{a}},
			{`{"field":"opted_out","cmp":"contains","value":"sms"}`, []int64{c}},
			{`{"event":{"name":"入群","window":{"last_days":3}}}`, []int64{a}},
			{`{"event":{"name":"入群","count":{"cmp":"gte","value":2}}}`, []int64{a}},
			{`{"event":{"name":"入群","count":{"cmp":"eq","value":0}}}`, []int64{c}},
			{`{"event":{"name":"加企微","timing":"first","cmp":"more_than_days_ago","value":30}}`, []int64{a}},
			{`{"order":{"metric":"count","window":{"last_days":30},"cmp":"gte","value":1}}`, []int64{a, b}},
			{`{"order":{"metric":"total","cmp":"gte","value":298.5}}`, []int64{a}},
			{`{"order":{"metric":"avg","cmp":"eq","value":149.25}}`, []int64{a}},
			{`{"order":{"metric":"count","cmp":"eq","value":0}}`, []int64{c}},
			{`{"order":{"metric":"last_at","cmp":"in_last_days","value":7}}`, []int64{a}},
			{`{"habit":{"kind":"active_hour","in":[21]}}`, []int64{a}},
			{`{"habit":{"kind":"buy_hour","in":[12]}}`, []int64{b}},
			{`{"op":"and","children":[{"field":"source","cmp":"eq","value":"抖音"},{"op":"not","children":[{"order":{"metric":"count","cmp":"gte","value":1}}]}]}`, []int64{c}},
		}
		for _, tc := range cases {
			if got := members(t, e, tc.tree); !same(got, tc.want) {
				t.Errorf("%s = %v, want %v", tc.tree, got, tc.want)
			}
		}
		// Incremental: new events, a refund, a profile change and a merge show at once.
		track(t, s, c, "入群", day(0, 8))
		if got := members(t, e, `{"event":{"name":"入群","window":{"last_days":3}}}`); !same(got, []int64{a, c}) {
			t.Errorf("after a new event: %v", got)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.RefundOrder(event.Refund{OrderID: "o3"}) }); err != nil {
			t.Fatal(err)
		}
		if got := members(t, e, `{"order":{"metric":"count","cmp":"eq","value":0}}`); !same(got, []int64{b, c}) {
			t.Errorf("after a full refund: %v", got)
		}
		sources := `{"field":"source","cmp":"in","value":["抖音","小红书"]}` // a union the engine caches
		if got := members(t, e, sources); !same(got, []int64{a, b, c}) {
			t.Errorf("sources: %v", got)
		}
		if err := s.UpdateCustomer(ctx, b, &customer.Patch{Gender: str("female")}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateCustomer(ctx, c, &customer.Patch{Source: str("门店")}); err != nil {
			t.Fatal(err)
		}
		if got := members(t, e, `{"field":"gender","cmp":"eq","value":"female"}`); !same(got, []int64{a, b}) {
			t.Errorf("after a profile change: %v", got)
		}
		if got := members(t, e, sources); !same(got, []int64{a, b}) {
			t.Errorf("sources after a profile change: %v", got)
		}
		err := s.InTx(ctx, func(tx *store.Tx) error { return tx.Merge(c, a, "test") })
		if err != nil {
			t.Fatal(err)
		}
		if got := members(t, e, `{"event":{"name":"入群","count":{"cmp":"gte","value":3}}}`); !same(got, []int64{a}) {
			t.Errorf("after merging c into a, 入群 ≥ 3: %v", got)
		}
		if got := members(t, e, `{"field":"opted_out","cmp":"contains","value":"sms"}`); !same(got, []int64{a}) {
			t.Errorf("opt-out follows the merge: %v", got)
		}
		// A rebuild from the store agrees with the incrementally maintained state.
		fresh := audience.New(s, audience.Options{Now: func() time.Time { return fixedNow }})
		if err := fresh.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			if got, want := members(t, e, tc.tree), members(t, fresh, tc.tree); !same(got, want) {
				t.Errorf("%s: incremental %v, rebuilt %v", tc.tree, got, want)
			}
		}
	})
}

func TestExplainNamesTheNodeThatFailed(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	a := newCustomer(t, s, "a", &customer.Patch{Gender: str("female"), Source: str("抖音")})
	e := audience.New(s, audience.Options{})
	if err := e.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tree, _ := segment.Parse([]byte(`{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"field":"source","cmp":"eq","value":"小红书"}]}`))
	ex, err := e.Explain(ctx, tree, nil, a)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Held || !ex.Children[0].Held || ex.Children[1].Held || ex.Children[1].Path != "children[1]" {
		t.Fatalf("explanation %+v %+v %+v", ex, ex.Children[0], ex.Children[1])
	}
}
