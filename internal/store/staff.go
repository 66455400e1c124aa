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

const staffCols = `id, login, name, email, department, COALESCE(department_id, 0), role, disabled_at, created_at, updated_at`

func scanStaff(sc interface{ Scan(...any) error }) (*staff.Staff, error) {
	var (
		m                staff.Staff
		disabled         sql.NullInt64
		created, updated int64
	)
	if err := sc.Scan(&m.ID, &m.Login, &m.Name, &m.Email, &m.Department, &m.DepartmentID, &m.Role, &disabled, &created, &updated); err != nil {
		return nil, err
	}
	m.Disabled = disabled.Valid
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	return &m, nil
}

func checkStaff(m *staff.Staff) error {
	m.Login = strings.TrimSpace(m.Login)
	m.Name = strings.TrimSpace(m.Name)
	switch {
	case m.Login == "" || len(m.Login) > 100 || strings.ContainsAny(m.Login, " \t\r\n"):
		return &customer.FieldError{Field: "login", Reason: "required, at most 100 characters, no spaces"}
	case m.Name == "" || len(m.Name) > 100:
		return &customer.FieldError{Field: "name", Reason: "required, at most 100 characters"}
	case m.Role == "":
		return &customer.FieldError{Field: "role", Reason: "want admin, operator, sales, content or the key of a custom role"}
	case len(m.Email) > 320 || len(m.Department) > 200:
		return &customer.FieldError{Field: "email", Reason: "too long"}
	}
	return nil
}

// CreateStaff adds a staff member with a password (may be "" for an account that cannot sign
// in yet). A taken login is ErrConflict.
func (s *Store) CreateStaff(ctx context.Context, m *staff.Staff, password string) error {
	if err := checkStaff(m); err != nil {
		return err
	}
	hash := ""
	if password != "" {
		h, err := s.hashNewPassword(m.Login, password)
		if err != nil {
			return err
		}
		hash = h
	}
	now := s.now()
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkRoleKey(m.Role, "role"); err != nil {
			return err
		}
		if err := tx.placeDepartment(m); err != nil {
			return err
		}
		err := tx.row(`INSERT INTO staff (login, name, email, department, department_id, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			m.Login, m.Name, m.Email, m.Department, nullID(m.DepartmentID), string(m.Role), hash, ms(now), ms(now)).Scan(&m.ID)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		m.CreatedAt, m.UpdatedAt = now, now
		return err
	})
}

// UpdateStaff changes name, email, department, role and the disabled flag. The role is a
// built-in one or a custom role's key; the department is DepartmentID, or without one the
// department named Department (made at the top level when none has that name).
func (s *Store) UpdateStaff(ctx context.Context, m *staff.Staff) error {
	if err := checkStaff(m); err != nil {
		return err
	}
	var disabled any
	if m.Disabled {
		disabled = ms(s.now())
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkRoleKey(m.Role, "role"); err != nil {
			return err
		}
		if err := tx.placeDepartment(m); err != nil {
			return err
		}
		res, err := tx.exec(`UPDATE staff SET name = ?, email = ?, department = ?, department_id = ?, role = ?, disabled_at = CASE WHEN ? THEN COALESCE(disabled_at, ?) ELSE NULL END, updated_at = ? WHERE id = ?`,
			m.Name, m.Email, m.Department, nullID(m.DepartmentID), string(m.Role), m.Disabled, disabled, ms(s.now()), m.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if m.Disabled { // a disabled account is signed out everywhere
			_, err = tx.exec(`DELETE FROM sessions WHERE staff_id = ?`, m.ID)
		}
		return err
	})
}

// SetPassword replaces a staff member's password and signs them out everywhere. The password
// must satisfy the policy (SetPasswordPolicy): a refusal is a FieldError on "password".
func (s *Store) SetPassword(ctx context.Context, id int64, password string) error {
	m, err := s.StaffByID(ctx, id)
	if err != nil {
		return err
	}
	hash, err := s.hashNewPassword(m.Login, password)
	if err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE staff SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?`, hash, ms(s.now()), ms(s.now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.exec(`DELETE FROM sessions WHERE staff_id = ?`, id)
		return err
	})
}

// StaffByID returns one staff member.
func (s *Store) StaffByID(ctx context.Context, id int64) (*staff.Staff, error) {
	m, err := scanStaff(s.db.QueryRowContext(ctx, s.q(`SELECT `+staffCols+` FROM staff WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return m, err
}

// StaffByLogin returns the staff member with this login (or email), or ErrNotFound.
func (s *Store) StaffByLogin(ctx context.Context, login string) (*staff.Staff, error) {
	m, err := scanStaff(s.db.QueryRowContext(ctx, s.q(`SELECT `+staffCols+` FROM staff WHERE login = ? OR (email = ? AND email <> '') ORDER BY id LIMIT 1`), login, login))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return m, err
}

// CheckLogin returns the active staff member whose login (or email) and password match, or
// ErrNotFound. It spends the same bcrypt time whether or not the login exists.
func (s *Store) CheckLogin(ctx context.Context, login, password string) (*staff.Staff, error) {
	var hash string
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+staffCols+`, password_hash FROM staff WHERE login = ? OR (email = ? AND email <> '') ORDER BY id LIMIT 1`), login, login)
	var (
		m                staff.Staff
		disabled         sql.NullInt64
		created, updated int64
	)
	err := row.Scan(&m.ID, &m.Login, &m.Name, &m.Email, &m.Department, &m.DepartmentID, &m.Role, &disabled, &created, &updated, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		staff.CheckPassword(dummyHash, password)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !staff.CheckPassword(hash, password) || disabled.Valid {
		return nil, ErrNotFound
	}
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	return &m, nil
}

// dummyHash is a bcrypt hash (cost 12) of a random string, compared against when a login does
// not exist so timing does not reveal which logins do.
const dummyHash = "$2a$12$LqUP.QlFplbHtfhe3wZHAekqlVzchayVaLAWqcVIMk2F7hLgYIjTy"

// ListStaff lists staff by name.
func (s *Store) ListStaff(ctx context.Context) ([]*staff.Staff, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+staffCols+` FROM staff ORDER BY id`)
	return collect(rows, err, scanStaff)
}

// CountStaff counts staff accounts.
func (s *Store) CountStaff(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff`).Scan(&n)
	return n, err
}

// CreateSession signs a staff member in and returns the cookie token (only its hash is stored).
func (s *Store) CreateSession(ctx context.Context, staffID int64, ttl time.Duration) (token string, sess staff.Session, err error) {
	token = staff.NewSecret("")
	now := s.now()
	sess = staff.Session{StaffID: staffID, CSRF: staff.NewSecret(""), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (token_hash, staff_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
		staff.HashSecret(token), staffID, sess.CSRF, ms(now), ms(sess.ExpiresAt))
	return token, sess, err
}

// Session returns the live session of a cookie token and its staff member, or ErrNotFound.
func (s *Store) Session(ctx context.Context, token string) (*staff.Session, *staff.Staff, error) {
	var (
		sess             staff.Session
		created, expires int64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT staff_id, csrf, created_at, expires_at FROM sessions WHERE token_hash = ? AND stage = '' AND expires_at > ?`),
		staff.HashSecret(token), ms(s.now())).Scan(&sess.StaffID, &sess.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	sess.CreatedAt, sess.ExpiresAt = fromMS(created), fromMS(expires)
	m, err := s.StaffByID(ctx, sess.StaffID)
	if err != nil {
		return nil, nil, err
	}
	if m.Disabled {
		return nil, nil, ErrNotFound
	}
	return &sess, m, nil
}

// DeleteSession signs a cookie token out.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE token_hash = ?`), staff.HashSecret(token))
	return err
}

// DeleteExpiredSessions removes sessions past their expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at <= ?`), ms(s.now()))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// keyPrefix is the visible start of secrets of each kind.
func keyPrefix(kind staff.KeyKind) string {
	if kind == staff.WriteKey {
		return "wk_"
	}
	return "sk_"
}

// CreateKey makes a key of the default scope that never expires (CreateKeyWith) and returns
// it with its secret, which is not stored and cannot be shown again.
func (s *Store) CreateKey(ctx context.Context, kind staff.KeyKind, name string, role staff.Role, createdBy int64) (*staff.Key, string, error) {
	if kind == staff.WriteKey {
		role = ""
	}
	return s.CreateKeyWith(ctx, KeySpec{Kind: kind, Name: name, Role: role, CreatedBy: createdBy}, nil)
}

const keyCols = `id, kind, name, role, scope, prefix, COALESCE(created_by, 0), created_at, revoked_at, last_used_at, expires_at`

func scanKey(sc interface{ Scan(...any) error }) (*staff.Key, error) {
	var (
		k             staff.Key
		created       int64
		revoked, used sql.NullInt64
		expires       sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &k.Kind, &k.Name, &k.Role, &k.Scope, &k.Prefix, &k.CreatedBy, &created, &revoked, &used, &expires); err != nil {
		return nil, err
	}
	if k.Kind == staff.APIKey && k.Scope == "" { // made before scopes: as wide as its role
		k.Scope = staff.DefaultScope(k.Role)
	}
	k.CreatedAt, k.RevokedAt, k.LastUsedAt, k.ExpiresAt = fromMS(created), nullMS(revoked), nullMS(used), nullMS(expires)
	return &k, nil
}

// KeyBySecret returns the unrevoked key of a kind that a secret belongs to, ErrNotFound, or
// ErrKeyExpired (with the key) when its expiry has passed.
func (s *Store) KeyBySecret(ctx context.Context, kind staff.KeyKind, secret string) (*staff.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+keyCols+` FROM api_keys WHERE hash = ? AND kind = ? AND revoked_at IS NULL`), staff.HashSecret(secret), string(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err == nil && k.Expired(s.now()) {
		return k, ErrKeyExpired
	}
	return k, err
}

// TouchKey records that a key was used (at most about once a minute per key is enough).
func (s *Store) TouchKey(ctx context.Context, id int64) error {
	now := ms(s.now())
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), now, id, now-60_000)
	return err
}

// ListKeys lists all keys, newest first.
func (s *Store) ListKeys(ctx context.Context) ([]*staff.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyCols+` FROM api_keys ORDER BY id DESC`)
	return collect(rows, err, scanKey)
}

// RevokeKey revokes a key; it stops working at once.
func (s *Store) RevokeKey(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), ms(s.now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Setting reads a setting; ok is false when unset.
func (s *Store) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, s.q(`SELECT value FROM settings WHERE key = ?`), key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}

// SetSetting writes a setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`), key, value)
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}
