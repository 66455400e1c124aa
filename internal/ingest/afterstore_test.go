package ingest_test

import (
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestAfterStoreSeesTheStoredEvents checks the hook gets each newly stored event once, with
// its customer, inside the transaction (what it writes commits with the events), and that
// its error fails the request without storing anything.
func TestAfterStoreSeesTheStoredEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		_, key, err := s.CreateKey(ctx, staff.WriteKey, "hook", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu   sync.Mutex
			seen []string
			fail bool
		)
		hook := func(tx *store.Tx, evts []*event.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evts {
				if e.CustomerID == 0 {
					t.Errorf("event %s without a customer", e.MessageID)
				}
				seen = append(seen, e.MessageID)
			}
			if fail {
				return errors.New("hook failed")
			}
			return tx.SetTagRuleBackfillCursor(999, store.EventCursor{ID: int64(len(seen))})
		}
		srv := httptest.NewServer(ingest.NewHandler(s, ingest.Options{Log: quiet, AfterStore: hook}))
		t.Cleanup(srv.Close)
		e := &env{t: t, s: s, key: key, srv: srv}
		e.mustPost("/v1/batch", `{"batch":[
			{"type":"track","userId":"a","event":"Viewed","messageId":"m1"},
			{"type":"identify","userId":"a","traits":{"name":"A"},"messageId":"m2"},
			{"type":"track","userId":"b","event":"Order Completed","properties":{"order_id":"o1","total":5},"messageId":"m3"}]}`, 200)
		// A retried batch stores nothing new: the hook is not called with duplicates.
		e.mustPost("/v1/batch", `{"batch":[{"type":"track","userId":"a","event":"Viewed","messageId":"m1"}]}`, 200)
		slices.Sort(seen)
		if !slices.Equal(seen, []string{"m1", "m2", "m3"}) {
			t.Errorf("hook saw %v", seen)
		}
		if cur, ok, err := s.TagRuleBackfillCursor(ctx, 999); err != nil || !ok || cur.ID != 3 {
			t.Errorf("the hook's write did not commit: %v %v %v", cur, ok, err)
		}
		mu.Lock()
		fail = true
		mu.Unlock()
		code, _ := e.post("/v1/track", `{"userId":"c","event":"Viewed","messageId":"m4"}`)
		if code < 500 {
			t.Errorf("failing hook: status %d", code)
		}
		if n := e.count("events"); n != 3 {
			t.Errorf("%d events after a failing hook, want 3", n)
		}
	})
}
