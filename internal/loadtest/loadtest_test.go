package loadtest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/demo"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/web"
)

// TestShortRun drives a small demo for a moment: staff pages and batches are answered, every
// acknowledged event is found, and the report says so.
func TestShortRun(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, store.SQLite)
	if _, err := demo.Generate(ctx, st, demo.Options{Customers: 200, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	_, key, err := st.CreateKey(ctx, staff.WriteKey, "load", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	members, err := st.ListStaff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []Session
	for _, m := range members {
		if m.Role == staff.Sales || m.Role == staff.Operator {
			tok, sess, err := st.CreateSession(ctx, m.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			sessions = append(sessions, Session{Token: tok, CSRF: sess.CSRF})
		}
	}
	srv := httptest.NewServer((&web.Server{Store: st}).Handler())
	defer srv.Close()
	rep, err := Run(ctx, st, Options{BaseURL: srv.URL, WriteKey: key, SessionCookie: web.SessionCookie, Sessions: sessions,
		Staff: 4, Think: time.Millisecond, Ingesters: 2, BatchSize: 20, Duration: 1500 * time.Millisecond, MaxRequests: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.EventsAcked == 0 || rep.Lost != 0 || !rep.NoServerErrors {
		t.Fatalf("report: %+v", rep)
	}
	seen := map[string]bool{}
	for _, s := range rep.Stats {
		seen[s.Kind] = true
		if s.Errors > 0 {
			t.Errorf("%s: %d errors (%v)", s.Kind, s.Errors, rep.FirstErrors)
		}
	}
	for _, k := range []string{KindBatch, KindHome, KindCustomers, KindCustomer, KindAPIList, KindAPICustomer, KindSegmentCount} {
		if !seen[k] {
			t.Errorf("no %s request was made", k)
		}
	}
	if !strings.Contains(rep.String(), "no lost writes met") {
		t.Errorf("report does not state the lost-writes verdict:\n%s", rep)
	}
}
