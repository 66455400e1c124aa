package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func securityField(err error) string {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestPasswordPolicyOnCreateAndChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		s.SetPasswordPolicy(staff.PasswordPolicy{MinLen: 12})
		for _, pw := range []string{"short", "elevenchars", "zhangwei-2024-x", "qwertyuiop1", "Password123", "abababababab"} {
			m := &staff.Staff{Login: "zhangwei", Name: "张伟", Role: staff.Sales}
			if err := s.CreateStaff(ctx, m, pw); securityField(err) != "password" {
				t.Errorf("%q: err %v, want a password field error", pw, err)
			}
		}
		if n, _ := s.CountStaff(ctx); n != 0 {
			t.Fatalf("a refused password still created %d staff", n)
		}
		m := &staff.Staff{Login: "zhangwei", Name: "张伟", Role: staff.Sales}
		if err := s.CreateStaff(ctx, m, "晚风吹过的海边小屋"); err == nil {
			t.Fatal("9 Chinese characters passed a 12-character minimum")
		}
		if err := s.CreateStaff(ctx, m, "今天的晚风吹过海边的小木屋"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPassword(ctx, m.ID, "ZhangWei12345"); securityField(err) != "password" {
			t.Fatalf("password containing the login: %v", err)
		}
		if err := s.SetPassword(ctx, m.ID, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckLogin(ctx, "zhangwei", "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTOTPEnrolVerifyReplayAndRecovery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		m := &staff.Staff{Login: "lin", Name: "林", Role: staff.Admin}
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConfirmTOTP(ctx, m.ID, "123456", nil); securityField(err) != "code" {
			t.Fatalf("confirm without enrolment: %v", err)
		}
		enr, err := staff.NewTOTP("siyu", "lin")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.BeginTOTP(ctx, m.ID, enr.Secret); err != nil {
			t.Fatal(err)
		}
		code := func(at time.Time) string {
			c, err := totp.GenerateCode(enr.Secret, at)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		wrong := "000000"
		if wrong == code(now) {
			wrong = "111111"
		}
		if _, err := s.ConfirmTOTP(ctx, m.ID, wrong, nil); securityField(err) != "code" {
			t.Fatalf("wrong code: %v", err)
		}
		if st, _ := s.TOTPState(ctx, m.ID); st.Enabled {
			t.Fatal("enabled by a wrong code")
		}
		a := &store.AuditEntry{StaffID: m.ID, Action: audit.TOTPEnabled, Target: "staff:1"}
		codes, err := s.ConfirmTOTP(ctx, m.ID, code(now), a)
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != staff.RecoveryCodeCount {
			t.Fatalf("%d recovery codes", len(codes))
		}
		st, err := s.TOTPState(ctx, m.ID)
		if err != nil || !st.Enabled || st.RecoveryCodes != 10 {
			t.Fatalf("state %+v, %v", st, err)
		}
		if p, _ := s.ListAudit(ctx, store.AuditQuery{Action: audit.TOTPEnabled}); len(p.Entries) != 1 {
			t.Fatal("enrolment not audited in its transaction")
		}
		// The enrolment code cannot be replayed at sign-in, not even 20 s later.
		now = now.Add(20 * time.Second)
		if got, _ := s.CheckSecondFactor(ctx, m.ID, code(now.Add(-20*time.Second))); got != "" {
			t.Fatalf("replayed code accepted as %q", got)
		}
		now = now.Add(40 * time.Second)
		if got, err := s.CheckSecondFactor(ctx, m.ID, code(now)); got != store.FactorTOTP || err != nil {
			t.Fatalf("fresh code: %q, %v", got, err)
		}
		if got, _ := s.CheckSecondFactor(ctx, m.ID, code(now)); got != "" {
			t.Fatal("a code was accepted twice")
		}
		// A code of 30 s ago that was never used still passes (clock drift)… unless a later
		// step was used, which is the case here.
		if got, _ := s.CheckSecondFactor(ctx, m.ID, code(now.Add(-30*time.Second))); got != "" {
			t.Fatal("an older step was accepted after a newer one")
		}
		if got, _ := s.CheckSecondFactor(ctx, m.ID, " "+codes[3][:9]+codes[3][9:]+" "); got != store.FactorRecovery {
			t.Fatalf("recovery code: %q", got)
		}
		if got, _ := s.CheckSecondFactor(ctx, m.ID, codes[3]); got != "" {
			t.Fatal("a recovery code was spent twice")
		}
		if st, _ := s.TOTPState(ctx, m.ID); st.RecoveryCodes != 9 {
			t.Fatalf("recovery codes left: %d", st.RecoveryCodes)
		}
		if err := s.DisableTOTP(ctx, m.ID, &store.AuditEntry{StaffID: m.ID, Action: audit.TOTPDisabled}); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.TOTPState(ctx, m.ID); st.Enabled || st.RecoveryCodes != 0 {
			t.Fatalf("after disable: %+v", st)
		}
		if _, err := s.CheckSecondFactor(ctx, m.ID, code(now.Add(time.Minute))); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second factor with two-factor off: %v", err)
		}
	})
}

func TestSessionsIdlePendingAndRevocation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		m := &staff.Staff{Login: "zhou", Name: "周", Role: staff.Operator}
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		start := store.SessionStart{StaffID: m.ID, TTL: 8 * time.Hour, IP: "10.1.2.3", UserAgent: "Mozilla/5.0 (iPhone)"}
		idle := 30 * time.Minute

		// A pending session is good for nothing but completing sign-in.
		pend := start
		pend.Pending = true
		ptok, _, err := s.StartSession(ctx, pend)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ActiveSession(ctx, ptok, idle); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("pending session used as a full one: %v", err)
		}
		if _, _, err := s.Session(ctx, ptok); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("pending session used through Session: %v", err)
		}
		if who, err := s.PendingSession(ctx, ptok); err != nil || who.ID != m.ID {
			t.Fatalf("pending: %v, %v", who, err)
		}
		tok, _, err := s.CompleteSession(ctx, ptok, start)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PendingSession(ctx, ptok); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("the pending token outlived its completion")
		}
		if _, _, err := s.CompleteSession(ctx, ptok, start); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a pending token completed twice")
		}

		// Idle expiry: use within the idle window keeps it alive, silence ends it.
		for range 4 {
			now = now.Add(20 * time.Minute)
			if _, _, err := s.ActiveSession(ctx, tok, idle); err != nil {
				t.Fatalf("active use at %v: %v", now, err)
			}
		}
		list, err := s.ListSessions(ctx, m.ID)
		if err != nil || len(list) != 1 || list[0].IP != "10.1.2.3" || !list[0].LastSeenAt.Equal(now) {
			t.Fatalf("sessions: %+v, %v", list, err)
		}
		now = now.Add(31 * time.Minute)
		if _, _, err := s.ActiveSession(ctx, tok, idle); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("idle session still active: %v", err)
		}
		// Absolute expiry holds even when used all the time.
		tok, _, _ = s.StartSession(ctx, start)
		for range 20 {
			now = now.Add(25 * time.Minute)
			s.ActiveSession(ctx, tok, idle)
		}
		if _, _, err := s.ActiveSession(ctx, tok, idle); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("session outlived its absolute expiry")
		}

		// Revocation: one device, everywhere, and by disabling the account.
		a, _, _ := s.StartSession(ctx, start)
		b, _, _ := s.StartSession(ctx, start)
		list, _ = s.ListSessions(ctx, m.ID)
		if len(list) != 2 {
			t.Fatalf("%d sessions", len(list))
		}
		if err := s.DeleteSessionByID(ctx, m.ID+1, list[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("someone else's session was deleted by id")
		}
		if err := s.DeleteSessionByID(ctx, m.ID, "%"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a wildcard id was accepted")
		}
		if err := s.DeleteSessionByID(ctx, m.ID, list[0].ID); err != nil {
			t.Fatal(err)
		}
		if list, _ = s.ListSessions(ctx, m.ID); len(list) != 1 {
			t.Fatalf("%d sessions after deleting one", len(list))
		}
		// The live session and the one past its absolute expiry both go.
		if n, err := s.DeleteStaffSessions(ctx, m.ID); err != nil || n != 2 {
			t.Fatalf("sign out everywhere: %d, %v", n, err)
		}
		for _, tk := range []string{a, b} {
			if _, _, err := s.ActiveSession(ctx, tk, idle); !errors.Is(err, store.ErrNotFound) {
				t.Fatal("a session survived sign out everywhere")
			}
		}
		c, _, _ := s.StartSession(ctx, start)
		m.Disabled = true
		if err := s.UpdateStaff(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ActiveSession(ctx, c, idle); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a disabled account's session still works")
		}
	})
}

func TestKeyScopesAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		for _, tc := range []struct {
			spec  store.KeySpec
			field string
		}{
			{store.KeySpec{Kind: staff.APIKey, Role: staff.Operator, Scope: "delete"}, "scope"},
			{store.KeySpec{Kind: staff.APIKey, Role: staff.Operator, Scope: staff.ScopeAdmin}, "scope"},
			{store.KeySpec{Kind: staff.WriteKey, Scope: staff.ScopeRead}, "scope"},
			{store.KeySpec{Kind: staff.APIKey, ExpiresAt: now}, "expires_at"},
		} {
			if _, _, err := s.CreateKeyWith(ctx, tc.spec, nil); securityField(err) != tc.field {
				t.Errorf("%+v: %v, want field %s", tc.spec, err, tc.field)
			}
		}
		keys, _ := s.ListKeys(ctx)
		if len(keys) != 0 {
			t.Fatalf("refused keys were stored: %d", len(keys))
		}
		k, secret, err := s.CreateKeyWith(ctx, store.KeySpec{Kind: staff.APIKey, Role: staff.Sales, Scope: staff.ScopeRead, ExpiresAt: now.Add(24 * time.Hour)},
			&store.AuditEntry{Action: audit.KeyCreate})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.KeyBySecret(ctx, staff.APIKey, secret)
		if err != nil || got.Scope != staff.ScopeRead || !got.ExpiresAt.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("key %+v, %v", got, err)
		}
		if p, _ := s.ListAudit(ctx, store.AuditQuery{Action: audit.KeyCreate}); len(p.Entries) != 1 || p.Entries[0].Target != fmt.Sprint("key:", k.ID) {
			t.Fatalf("audit of key creation: %+v", p.Entries)
		}
		now = now.Add(24 * time.Hour)
		if got, err := s.KeyBySecret(ctx, staff.APIKey, secret); !errors.Is(err, store.ErrKeyExpired) || got == nil || got.ID != k.ID {
			t.Fatalf("expired key: %v, %v", got, err)
		}
		_, adminSecret, _ := s.CreateKey(ctx, staff.APIKey, "ops", staff.Admin, 0)
		if got, _ := s.KeyBySecret(ctx, staff.APIKey, adminSecret); got.Scope != staff.ScopeAdmin {
			t.Fatalf("an admin key made without a scope has %q", got.Scope)
		}
		_, opSecret, _ := s.CreateKey(ctx, staff.APIKey, "ops", staff.Operator, 0)
		if got, _ := s.KeyBySecret(ctx, staff.APIKey, opSecret); got.Scope != staff.ScopeWrite {
			t.Fatalf("an operator key made without a scope has %q", got.Scope)
		}
	})
}
