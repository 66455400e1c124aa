package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// This file holds sign-in hardening: the password policy, two-factor (TOTP) enrolment and
// checks with recovery codes, sessions with idle expiry, devices and revocation, and API key
// scopes and expiry.

// ErrKeyExpired is returned for a key whose expiry has passed: callers say so (401) rather
// than "unknown key", so whoever holds it knows to ask for a new one.
var ErrKeyExpired = errors.New("key expired")

// SetPasswordPolicy sets the policy new passwords must satisfy (CreateStaff, SetPassword).
func (s *Store) SetPasswordPolicy(p staff.PasswordPolicy) { s.passwordPolicy = p }

// PasswordPolicy is the policy in force.
func (s *Store) PasswordPolicy() staff.PasswordPolicy { return s.passwordPolicy }

// hashNewPassword checks pw against the policy for login and hashes it; a refusal is a
// FieldError on "password".
func (s *Store) hashNewPassword(login, pw string) (string, error) {
	if err := s.passwordPolicy.Check(login, pw); err != nil {
		return "", &customer.FieldError{Field: "password", Reason: err.Error()}
	}
	h, err := staff.HashPassword(pw)
	if err != nil {
		return "", &customer.FieldError{Field: "password", Reason: err.Error()}
	}
	return h, nil
}

// SessionStart describes a sign-in.
type SessionStart struct {
	StaffID int64
	// TTL is the absolute life of the session (re-used as the life of a pending one).
	TTL       time.Duration
	IP        string
	UserAgent string
	// Pending makes a session that proves only the password: it cannot be used for anything
	// but the second step of sign-in (CompleteSession) and lasts PendingTTL.
	Pending bool
}

// PendingTTL is how long a password-only session waits for its second factor.
const PendingTTL = 5 * time.Minute

// StartSession signs a staff member in (or half in, when Pending) and returns the cookie
// token; only its hash is stored.
func (s *Store) StartSession(ctx context.Context, st SessionStart) (token string, sess staff.Session, err error) {
	token = staff.NewSecret("")
	now := s.now()
	ttl, stage := st.TTL, ""
	if st.Pending {
		ttl, stage = PendingTTL, "totp"
	}
	hash := staff.HashSecret(token)
	sess = staff.Session{ID: hash[:16], StaffID: st.StaffID, CSRF: staff.NewSecret(""), CreatedAt: now, ExpiresAt: now.Add(ttl), LastSeenAt: now,
		IP: cut(st.IP, maxAuditIP), UserAgent: cut(st.UserAgent, maxAuditUA)}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (token_hash, staff_id, csrf, created_at, expires_at, last_seen_at, ip, user_agent, stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		hash, st.StaffID, sess.CSRF, ms(now), ms(sess.ExpiresAt), ms(now), sess.IP, sess.UserAgent, stage)
	return token, sess, err
}

// sessionTouchEvery is how stale last_seen_at may get before a request writes it again:
// idle expiry is precise to about this much, and a busy console writes a session row about
// once a minute rather than on every click.
const sessionTouchEvery = time.Minute

// ActiveSession returns the live, fully signed-in session of a cookie token and its staff
// member, or ErrNotFound when there is none, it has been idle longer than idle (0: no idle
// limit), it is past its absolute expiry, or the account is disabled. It records the use.
func (s *Store) ActiveSession(ctx context.Context, token string, idle time.Duration) (*staff.Session, *staff.Staff, error) {
	now := s.now()
	hash := staff.HashSecret(token)
	var (
		sess                   staff.Session
		created, expires, seen int64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT staff_id, csrf, created_at, expires_at, last_seen_at, ip, user_agent FROM sessions WHERE token_hash = ? AND stage = '' AND expires_at > ?`),
		hash, ms(now)).Scan(&sess.StaffID, &sess.CSRF, &created, &expires, &seen, &sess.IP, &sess.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if seen == 0 { // a session from before idle expiry existed
		seen = created
	}
	if idle > 0 && now.Sub(fromMS(seen)) > idle {
		s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ?`), hash)
		return nil, nil, ErrNotFound
	}
	if now.Sub(fromMS(seen)) >= sessionTouchEvery {
		if _, err := s.db.ExecContext(ctx, s.q(`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?`), ms(now), hash); err != nil {
			return nil, nil, err
		}
		seen = ms(now)
	}
	sess.ID = hash[:16]
	sess.CreatedAt, sess.ExpiresAt, sess.LastSeenAt = fromMS(created), fromMS(expires), fromMS(seen)
	m, err := s.StaffByID(ctx, sess.StaffID)
	if err != nil {
		return nil, nil, err
	}
	if m.Disabled {
		return nil, nil, ErrNotFound
	}
	return &sess, m, nil
}

// PendingSession returns the staff member of a live password-only session, or ErrNotFound.
func (s *Store) PendingSession(ctx context.Context, token string) (*staff.Staff, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT staff_id FROM sessions WHERE token_hash = ? AND stage = 'totp' AND expires_at > ?`),
		staff.HashSecret(token), ms(s.now())).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m, err := s.StaffByID(ctx, id)
	if err == nil && m.Disabled {
		return nil, ErrNotFound
	}
	return m, err
}

// ListSessions lists a staff member's live, fully signed-in sessions, most recently used first.
func (s *Store) ListSessions(ctx context.Context, staffID int64) ([]*staff.Session, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT token_hash, staff_id, created_at, expires_at, last_seen_at, ip, user_agent FROM sessions WHERE staff_id = ? AND stage = '' AND expires_at > ? ORDER BY last_seen_at DESC, created_at DESC`),
		staffID, ms(s.now()))
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (*staff.Session, error) {
		var (
			x                      staff.Session
			hash                   string
			created, expires, seen int64
		)
		if err := sc.Scan(&hash, &x.StaffID, &created, &expires, &seen, &x.IP, &x.UserAgent); err != nil {
			return nil, err
		}
		if seen == 0 {
			seen = created
		}
		x.ID = hash[:16]
		x.CreatedAt, x.ExpiresAt, x.LastSeenAt = fromMS(created), fromMS(expires), fromMS(seen)
		return &x, nil
	})
}

// DeleteSessionByID signs one of a staff member's sessions out (by the ID shown in lists).
func (s *Store) DeleteSessionByID(ctx context.Context, staffID int64, id string) error {
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return ErrNotFound
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE staff_id = ? AND token_hash LIKE ?`), staffID, id+"%")
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteStaffSessions signs a staff member out everywhere and returns how many sessions ended.
func (s *Store) DeleteStaffSessions(ctx context.Context, staffID int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE staff_id = ?`), staffID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// TOTPStatus is a staff member's two-factor state.
type TOTPStatus struct {
	Enabled       bool      `json:"enabled"`
	EnabledAt     time.Time `json:"enabled_at,omitzero"`
	RecoveryCodes int       `json:"recovery_codes_left"`
}

// TOTPState reads a staff member's two-factor state.
func (s *Store) TOTPState(ctx context.Context, staffID int64) (*TOTPStatus, error) {
	var enabled sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT totp_enabled_at FROM staff WHERE id = ?`), staffID).Scan(&enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st := &TOTPStatus{Enabled: enabled.Valid, EnabledAt: nullMS(enabled)}
	if st.Enabled {
		err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM recovery_codes WHERE staff_id = ? AND used_at IS NULL`), staffID).Scan(&st.RecoveryCodes)
	}
	return st, err
}

// BeginTOTP keeps a new secret for a staff member until they confirm it with a code
// (ConfirmTOTP); two-factor is not on until then.
func (s *Store) BeginTOTP(ctx context.Context, staffID int64, secret string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE staff SET totp_pending = ?, updated_at = ? WHERE id = ?`), secret, ms(s.now()), staffID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ConfirmTOTP turns two-factor on when code matches the secret BeginTOTP kept, and returns
// fresh recovery codes (shown once; only hashes are kept). A wrong code is a FieldError on
// "code". audit, when not nil, is written in the same transaction.
func (s *Store) ConfirmTOTP(ctx context.Context, staffID int64, code string, audit *AuditEntry) ([]string, error) {
	var codes []string
	err := s.InTx(ctx, func(tx *Tx) error {
		var pending string
		if err := tx.row(`SELECT totp_pending FROM staff WHERE id = ?`, staffID).Scan(&pending); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if pending == "" {
			return &customer.FieldError{Field: "code", Reason: "start enrolment first: no secret is waiting"}
		}
		now := tx.Now()
		step, ok := staff.CheckTOTP(pending, code, now, 0)
		if !ok {
			return &customer.FieldError{Field: "code", Reason: "wrong code: check the phone's clock and type the current 6 digits"}
		}
		if _, err := tx.exec(`UPDATE staff SET totp_secret = totp_pending, totp_pending = '', totp_enabled_at = ?, totp_last_step = ?, updated_at = ? WHERE id = ?`,
			ms(now), step, ms(now), staffID); err != nil {
			return err
		}
		var err error
		codes, err = tx.replaceRecoveryCodes(staffID)
		if err != nil {
			return err
		}
		if audit != nil {
			return tx.AppendAudit(*audit)
		}
		return nil
	})
	return codes, err
}

// RegenerateRecoveryCodes replaces a staff member's recovery codes with fresh ones.
func (s *Store) RegenerateRecoveryCodes(ctx context.Context, staffID int64) ([]string, error) {
	var codes []string
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		codes, err = tx.replaceRecoveryCodes(staffID)
		return err
	})
	return codes, err
}

func (tx *Tx) replaceRecoveryCodes(staffID int64) ([]string, error) {
	if _, err := tx.exec(`DELETE FROM recovery_codes WHERE staff_id = ?`, staffID); err != nil {
		return nil, err
	}
	codes := staff.NewRecoveryCodes()
	for _, c := range codes {
		if _, err := tx.exec(`INSERT INTO recovery_codes (staff_id, hash, created_at) VALUES (?, ?, ?)`, staffID, staff.RecoveryCodeHash(staffID, c), ms(tx.Now())); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// DisableTOTP turns two-factor off (by the person, or an admin's reset) and forgets the secret
// and recovery codes; audit, when not nil, is written in the same transaction.
func (s *Store) DisableTOTP(ctx context.Context, staffID int64, audit *AuditEntry) error {
	return s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE staff SET totp_secret = '', totp_pending = '', totp_enabled_at = NULL, totp_last_step = 0, updated_at = ? WHERE id = ?`, ms(tx.Now()), staffID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.exec(`DELETE FROM recovery_codes WHERE staff_id = ?`, staffID); err != nil {
			return err
		}
		if audit != nil {
			return tx.AppendAudit(*audit)
		}
		return nil
	})
}

// Second-factor outcomes of CheckSecondFactor.
const (
	FactorTOTP     = "totp"
	FactorRecovery = "recovery_code"
)

// CheckSecondFactor checks a one-time code, or else a recovery code, for a staff member with
// two-factor on. A TOTP code is accepted once (its step is remembered, atomically, so two
// requests racing with the same code cannot both pass); a recovery code is spent. It returns
// which kind matched, or "" when none did.
func (s *Store) CheckSecondFactor(ctx context.Context, staffID int64, code string) (string, error) {
	var (
		secret string
		last   int64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT totp_secret, totp_last_step FROM staff WHERE id = ? AND totp_enabled_at IS NOT NULL`), staffID).Scan(&secret, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	if step, ok := staff.CheckTOTP(secret, code, s.now(), last); ok {
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE staff SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`), step, staffID, step)
		if err != nil {
			return "", err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return FactorTOTP, nil
		}
		return "", nil
	}
	if strings.TrimSpace(code) == "" {
		return "", nil
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE recovery_codes SET used_at = ? WHERE staff_id = ? AND hash = ? AND used_at IS NULL`),
		ms(s.now()), staffID, staff.RecoveryCodeHash(staffID, code))
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return FactorRecovery, nil
	}
	return "", nil
}

// CompleteSession ends a pending (password-only) session and starts a full one in its place:
// a new token, so a token seen before the second factor is worth nothing after it.
func (s *Store) CompleteSession(ctx context.Context, pendingToken string, st SessionStart) (string, staff.Session, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ? AND stage = 'totp' AND staff_id = ?`), staff.HashSecret(pendingToken), st.StaffID)
	if err != nil {
		return "", staff.Session{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", staff.Session{}, ErrNotFound
	}
	st.Pending = false
	return s.StartSession(ctx, st)
}

// KeySpec describes a key to make.
type KeySpec struct {
	Kind staff.KeyKind
	Name string
	Role staff.Role // API keys: the role the key acts as (default operator)
	// Scope limits an API key to read, write or admin (default: staff.DefaultScope(Role)).
	Scope staff.KeyScope
	// CreatedBy is the staff member the key acts for (0: nobody).
	CreatedBy int64
	// ExpiresAt, when set, must be in the future.
	ExpiresAt time.Time
}

// CreateKeyWith makes a key and returns it with its secret, which is not stored and cannot be
// shown again. audit, when not nil, is written in the same transaction.
func (s *Store) CreateKeyWith(ctx context.Context, spec KeySpec, audit *AuditEntry) (*staff.Key, string, error) {
	switch spec.Kind {
	case staff.WriteKey:
		if spec.Role != "" {
			return nil, "", &customer.FieldError{Field: "role", Reason: "write keys have no role"}
		}
		if spec.Scope != "" {
			return nil, "", &customer.FieldError{Field: "scope", Reason: "write keys have no scope: they only send data in"}
		}
	case staff.APIKey:
		if spec.Role == "" {
			spec.Role = staff.Operator
		}
		if !spec.Role.Valid() { // a custom role's key (team: roles.go)
			if _, err := s.RoleByKey(ctx, spec.Role); errors.Is(err, ErrNotFound) {
				return nil, "", &customer.FieldError{Field: "role", Reason: "want admin, operator, sales, content or the key of a custom role"}
			} else if err != nil {
				return nil, "", err
			}
		}
		if spec.Scope == "" {
			spec.Scope = staff.DefaultScope(spec.Role)
		}
		if !spec.Scope.Valid() {
			return nil, "", &customer.FieldError{Field: "scope", Reason: "want read, write or admin"}
		}
		if spec.Scope == staff.ScopeAdmin && spec.Role != staff.Admin {
			return nil, "", &customer.FieldError{Field: "scope", Reason: "only an admin-role key can have the admin scope"}
		}
	default:
		return nil, "", &customer.FieldError{Field: "kind", Reason: "want write or api"}
	}
	if len(spec.Name) > 200 {
		return nil, "", &customer.FieldError{Field: "name", Reason: "longer than 200 bytes"}
	}
	now := s.now()
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return nil, "", &customer.FieldError{Field: "expires_at", Reason: "must be in the future"}
	}
	secret := staff.NewSecret(keyPrefix(spec.Kind))
	k := &staff.Key{Kind: spec.Kind, Name: spec.Name, Role: spec.Role, Scope: spec.Scope, Prefix: secret[:9], CreatedBy: spec.CreatedBy, CreatedAt: now, ExpiresAt: spec.ExpiresAt}
	var expires any
	if !spec.ExpiresAt.IsZero() {
		expires = ms(spec.ExpiresAt)
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if spec.Kind == staff.APIKey {
			if err := tx.checkRoleKey(spec.Role, "role"); err != nil { // built-in or custom
				return err
			}
		}
		if err := tx.row(`INSERT INTO api_keys (kind, name, role, scope, prefix, hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			string(k.Kind), k.Name, string(k.Role), string(k.Scope), k.Prefix, staff.HashSecret(secret), nullID(k.CreatedBy), ms(now), expires).Scan(&k.ID); err != nil {
			return err
		}
		if audit != nil {
			a := *audit
			if a.Target == "" {
				a.Target = fmt.Sprintf("key:%d", k.ID)
			}
			return tx.AppendAudit(a)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// SetSettings writes several settings in one transaction (a value of "" removes the setting),
// with audit, when not nil, in the same transaction: an integration's secrets change together
// and their change is recorded or nothing is.
func (s *Store) SetSettings(ctx context.Context, values map[string]string, audit *AuditEntry) error {
	return s.InTx(ctx, func(tx *Tx) error {
		for k, v := range values {
			var err error
			if v == "" {
				_, err = tx.exec(`DELETE FROM settings WHERE key = ?`, k)
			} else {
				_, err = tx.exec(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v)
			}
			if err != nil {
				return fmt.Errorf("set %s: %w", k, err)
			}
		}
		if audit != nil {
			return tx.AppendAudit(*audit)
		}
		return nil
	})
}
