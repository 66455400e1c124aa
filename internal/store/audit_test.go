package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestAuditAppendListAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		admin := &staff.Staff{Login: "wang", Name: "王芳", Role: staff.Admin}
		if err := s.CreateStaff(ctx, admin, ""); err != nil {
			t.Fatal(err)
		}
		key, _, err := s.CreateKey(ctx, staff.APIKey, "crm sync", staff.Operator, admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		entries := []store.AuditEntry{
			{At: now.Add(-3 * time.Hour), Action: audit.SignInFailed, IP: "10.0.0.9", UserAgent: "curl/8", Detail: map[string]any{"login": "wang"}},
			{At: now.Add(-2 * time.Hour), StaffID: admin.ID, Action: audit.SignIn, IP: "10.0.0.9", UserAgent: "Mozilla/5.0"},
			{At: now.Add(-time.Hour), StaffID: admin.ID, Action: audit.CustomerDelete, Target: "customer:42", Detail: map[string]any{"name": "张三"}},
			{StaffID: admin.ID, KeyID: key.ID, Action: audit.TagsBulkAssign, Target: "tag:7", Detail: map[string]any{"customers": 120}},
		}
		for _, e := range entries {
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListAudit(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 4 || page.NextCursor != "" {
			t.Fatalf("got %d entries, cursor %q", len(page.Entries), page.NextCursor)
		}
		newest := page.Entries[0]
		if newest.Action != audit.TagsBulkAssign || !newest.At.Equal(now) || newest.Actor != "王芳 (wang) via key crm sync "+key.Prefix+"…" || newest.Detail["customers"] != float64(120) {
			t.Fatalf("newest entry: %+v", newest)
		}
		if e := page.Entries[3]; e.Action != audit.SignInFailed || e.StaffID != 0 || e.Detail["login"] != "wang" || e.IP != "10.0.0.9" || e.UserAgent != "curl/8" {
			t.Fatalf("oldest entry: %+v", e)
		}

		for name, tc := range map[string]struct {
			q    store.AuditQuery
			want []string
		}{
			"actor":        {store.AuditQuery{StaffID: admin.ID}, []string{audit.TagsBulkAssign, audit.CustomerDelete, audit.SignIn}},
			"key":          {store.AuditQuery{KeyID: key.ID}, []string{audit.TagsBulkAssign}},
			"action":       {store.AuditQuery{Action: audit.SignIn}, []string{audit.SignIn}},
			"area":         {store.AuditQuery{Action: "auth"}, []string{audit.SignIn, audit.SignInFailed}},
			"target":       {store.AuditQuery{Target: "customer:42"}, []string{audit.CustomerDelete}},
			"target kind":  {store.AuditQuery{Target: "tag:"}, []string{audit.TagsBulkAssign}},
			"time range":   {store.AuditQuery{From: now.Add(-2 * time.Hour), To: now}, []string{audit.CustomerDelete, audit.SignIn}},
			"text detail":  {store.AuditQuery{Text: "张三"}, []string{audit.CustomerDelete}},
			"text ip":      {store.AuditQuery{Text: "10.0.0"}, []string{audit.SignIn, audit.SignInFailed}},
			"text actor":   {store.AuditQuery{Text: "WANG"}, []string{audit.TagsBulkAssign, audit.CustomerDelete, audit.SignIn, audit.SignInFailed}},
			"text literal": {store.AuditQuery{Text: "%"}, nil},
		} {
			page, err := s.ListAudit(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for _, e := range page.Entries {
				got = append(got, e.Action)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("%s: got %v, want %v", name, got, tc.want)
			}
		}

		// Paging: two by two, newest first, nothing skipped or repeated.
		var seen []string
		cursor := ""
		for range 3 {
			p, err := s.ListAudit(ctx, store.AuditQuery{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entries {
				seen = append(seen, e.Action)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if want := audit.TagsBulkAssign + "," + audit.CustomerDelete + "," + audit.SignIn + "," + audit.SignInFailed; strings.Join(seen, ",") != want {
			t.Fatalf("paged: %v", seen)
		}
		for _, q := range []store.AuditQuery{{Limit: 501}, {Cursor: "abc"}} {
			if _, err := s.ListAudit(ctx, q); err == nil {
				t.Errorf("%+v: no error", q)
			}
		}
	})
}

// TestAuditAppendOnly shows the database refuses to change or delete an entry, whatever code
// asks, and that an entry written in a rolled-back transaction is gone with it.
func TestAuditAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := s.AppendAudit(ctx, store.AuditEntry{Action: audit.SignIn, Target: "staff:1"}); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			`UPDATE audit_log SET action = 'auth.sign_out'`,
			`DELETE FROM audit_log`,
		} {
			if _, err := s.DB().ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err %v, want append-only", stmt, err)
			}
		}
		if s.Engine() == store.Postgres {
			if _, err := s.DB().ExecContext(ctx, `TRUNCATE audit_log`); err == nil {
				t.Error("TRUNCATE: no error")
			}
		}
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.AppendAudit(store.AuditEntry{Action: audit.CustomerDelete, Target: "customer:1"}); err != nil {
				return err
			}
			return store.ErrConflict // the action fails: its audit line goes with it
		})
		if err != store.ErrConflict {
			t.Fatal(err)
		}
		page, err := s.ListAudit(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 1 || page.Entries[0].Action != audit.SignIn {
			t.Fatalf("entries: %+v", page.Entries)
		}
		if err := s.AppendAudit(ctx, store.AuditEntry{}); err == nil {
			t.Error("an entry without an action was written")
		}
		long := store.AuditEntry{Action: audit.SignIn, UserAgent: strings.Repeat("界", 500)}
		if err := s.AppendAudit(ctx, long); err != nil {
			t.Fatalf("a long user agent must be cut, not refused: %v", err)
		}
	})
}

// BenchmarkAppendAudit is the cost an audited action pays for its entry (own transaction).
func BenchmarkAppendAudit(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			e := store.AuditEntry{StaffID: 1, Action: audit.TagsBulkAssign, Target: "tag:7", IP: "203.0.113.9", UserAgent: "Mozilla/5.0", Detail: map[string]any{"customers": 120}}
			b.ResetTimer()
			for b.Loop() {
				if err := s.AppendAudit(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListAudit reads the newest page filtered by area and by a text search over 20,000
// entries, as the console's 审计日志 page does.
func BenchmarkListAudit(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			err := s.InTx(ctx, func(tx *store.Tx) error {
				for i := range 20_000 {
					a := []string{audit.SignIn, audit.TagsBulkAssign, audit.CustomerExport, audit.SegmentDelete}[i%4]
					if err := tx.AppendAudit(store.AuditEntry{StaffID: int64(1 + i%7), Action: a, Target: fmt.Sprintf("segment:%d", i%300), IP: fmt.Sprintf("10.0.%d.%d", i%200, i%250)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			for name, q := range map[string]store.AuditQuery{"newest": {}, "area": {Action: "auth"}, "text": {Text: "10.0.17."}, "actor+action": {StaffID: 3, Action: audit.CustomerExport}} {
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.ListAudit(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
