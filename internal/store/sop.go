package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SOPs and their versions as stored. The spec itself (internal/sop.Spec) is JSON to the store;
// the columns beside it are what queries select on (status, trigger kind and event name).

// SOPRow is an SOP with the spec of its current version.
type SOPRow struct {
	ID           int64           `json:"id"`
	Name         string          `json:"name"`
	Status       string          `json:"status"`
	Version      int             `json:"version"`
	TriggerKind  string          `json:"trigger_kind"`
	TriggerEvent string          `json:"trigger_event,omitempty"`
	Spec         json.RawMessage `json:"spec"`
	CreatedBy    int64           `json:"created_by,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// SOPVersion is one saved version of an SOP's spec.
type SOPVersion struct {
	SOPID     int64           `json:"sop_id"`
	Version   int             `json:"version"`
	Spec      json.RawMessage `json:"spec"`
	CreatedBy int64           `json:"created_by,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// sopsVersionKey counts SOP changes in settings, so planners cache enabled SOPs and reload them
// when any process changes one.
const sopsVersionKey = "sops.version"

const sopCols = `s.id, s.name, s.status, s.version, s.trigger_kind, s.trigger_event, v.spec, COALESCE(s.created_by, 0), s.created_at, s.updated_at`
const sopFrom = ` FROM sops s JOIN sop_versions v ON v.sop_id = s.id AND v.version = s.version`

func scanSOP(sc interface{ Scan(...any) error }) (*SOPRow, error) {
	var (
		r                SOPRow
		spec             string
		created, updated int64
	)
	if err := sc.Scan(&r.ID, &r.Name, &r.Status, &r.Version, &r.TriggerKind, &r.TriggerEvent, &spec, &r.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	r.Spec, r.CreatedAt, r.UpdatedAt = json.RawMessage(spec), fromMS(created), fromMS(updated)
	return &r, nil
}

func (tx *Tx) bumpSOPs() error {
	_, err := tx.exec(`INSERT INTO settings (key, value) VALUES (?, '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)`, sopsVersionKey)
	return err
}

// SOPsVersion is the counter of SOP changes (0 before the first).
func (tx *Tx) SOPsVersion() (int64, error) {
	var v string
	err := tx.row(`SELECT value FROM settings WHERE key = ?`, sopsVersionKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(v, &n)
	return n, err
}

// CreateSOP stores a new SOP (paused, version 1) in tx and returns it. r.Spec, Name,
// TriggerKind and TriggerEvent are taken from r.
func (tx *Tx) CreateSOP(r *SOPRow) error {
	now := tx.Now()
	if r.Status == "" {
		r.Status = "paused"
	}
	err := tx.row(`INSERT INTO sops (name, status, version, trigger_kind, trigger_event, created_by, created_at, updated_at)
		VALUES (?, ?, 1, ?, ?, ?, ?, ?) RETURNING id`, r.Name, r.Status, r.TriggerKind, r.TriggerEvent, nullID(r.CreatedBy), ms(now), ms(now)).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("create sop: %w", err)
	}
	r.Version, r.CreatedAt, r.UpdatedAt = 1, now, now
	if _, err := tx.exec(`INSERT INTO sop_versions (sop_id, version, spec, created_by, created_at) VALUES (?, 1, ?, ?, ?)`,
		r.ID, string(r.Spec), nullID(r.CreatedBy), ms(now)); err != nil {
		return fmt.Errorf("create sop version: %w", err)
	}
	return tx.bumpSOPs()
}

// UpdateSOP saves r.Spec as a new version of SOP r.ID (its status unchanged) and sets
// r.Version. by is who edited it.
func (tx *Tx) UpdateSOP(r *SOPRow, by int64) error {
	now := tx.Now()
	var v int
	err := tx.row(`UPDATE sops SET name = ?, version = version + 1, trigger_kind = ?, trigger_event = ?, updated_at = ?
		WHERE id = ? RETURNING version`, r.Name, r.TriggerKind, r.TriggerEvent, ms(now), r.ID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update sop %d: %w", r.ID, err)
	}
	if _, err := tx.exec(`INSERT INTO sop_versions (sop_id, version, spec, created_by, created_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, v, string(r.Spec), nullID(by), ms(now)); err != nil {
		return fmt.Errorf("save sop %d version %d: %w", r.ID, v, err)
	}
	r.Version, r.UpdatedAt = v, now
	return tx.bumpSOPs()
}

// SetSOPStatus changes an SOP's status.
func (tx *Tx) SetSOPStatus(id int64, status string) error {
	res, err := tx.exec(`UPDATE sops SET status = ?, updated_at = ? WHERE id = ?`, status, ms(tx.Now()), id)
	if err != nil {
		return fmt.Errorf("set sop %d status: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return tx.bumpSOPs()
}

// SOP returns an SOP with its current spec, in tx.
func (tx *Tx) SOP(id int64) (*SOPRow, error) {
	r, err := scanSOP(tx.row(`SELECT `+sopCols+sopFrom+` WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// SOP returns an SOP with its current spec.
func (s *Store) SOP(ctx context.Context, id int64) (*SOPRow, error) {
	r, err := scanSOP(s.db.QueryRowContext(ctx, s.q(`SELECT `+sopCols+sopFrom+` WHERE s.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// SOPs lists SOPs by id; archived ones only when withArchived.
func (s *Store) SOPs(ctx context.Context, withArchived bool) ([]*SOPRow, error) {
	where := ` WHERE s.status <> 'archived'`
	if withArchived {
		where = ``
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sopCols+sopFrom+where+` ORDER BY s.id`)
	return collect(rows, err, scanSOP)
}

// EnabledSOPs lists the enabled SOPs whose trigger is of kind, in tx.
func (tx *Tx) EnabledSOPs(kind string) ([]*SOPRow, error) {
	rows, err := tx.query(`SELECT `+sopCols+sopFrom+` WHERE s.status = 'enabled' AND s.trigger_kind = ? ORDER BY s.id`, kind)
	return collect(rows, err, scanSOP)
}

// SOPVersions lists an SOP's versions, newest first.
func (s *Store) SOPVersions(ctx context.Context, id int64) ([]*SOPVersion, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT sop_id, version, spec, COALESCE(created_by, 0), created_at FROM sop_versions
		WHERE sop_id = ? ORDER BY version DESC`), id)
	return collect(rows, err, scanSOPVersion)
}

// SOPSpec returns one version of an SOP's spec.
func (s *Store) SOPSpec(ctx context.Context, id int64, version int) (*SOPVersion, error) {
	v, err := scanSOPVersion(s.db.QueryRowContext(ctx, s.q(`SELECT sop_id, version, spec, COALESCE(created_by, 0), created_at
		FROM sop_versions WHERE sop_id = ? AND version = ?`), id, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return v, err
}

func scanSOPVersion(sc interface{ Scan(...any) error }) (*SOPVersion, error) {
	var (
		v       SOPVersion
		spec    string
		created int64
	)
	if err := sc.Scan(&v.SOPID, &v.Version, &spec, &v.CreatedBy, &created); err != nil {
		return nil, err
	}
	v.Spec, v.CreatedAt = json.RawMessage(spec), fromMS(created)
	return &v, nil
}

// SOP audience members, for audience-entry triggers: the customers last seen in the audience.

// SOPMembers lists the customers recorded in an SOP's audience.
func (s *Store) SOPMembers(ctx context.Context, sopID int64) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id FROM sop_members WHERE sop_id = ? ORDER BY customer_id`), sopID)
	return collect(rows, err, scanID)
}

// SetSOPMembers records customers entering (add) and leaving (remove) an SOP's audience.
func (tx *Tx) SetSOPMembers(sopID int64, add, remove []int64, at time.Time) error {
	for _, id := range add {
		if _, err := tx.exec(`INSERT INTO sop_members (sop_id, customer_id, entered_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, sopID, id, ms(at)); err != nil {
			return err
		}
	}
	for _, id := range remove {
		if _, err := tx.exec(`DELETE FROM sop_members WHERE sop_id = ? AND customer_id = ?`, sopID, id); err != nil {
			return err
		}
	}
	return nil
}

// CustomersByBirthday lists the customers (not merged away) whose birthday falls on one of
// the month-days (MM-DD).
func (s *Store) CustomersByBirthday(ctx context.Context, monthDays []string) ([]int64, error) {
	if len(monthDays) == 0 {
		return []int64{}, nil
	}
	args := make([]any, len(monthDays))
	for i, md := range monthDays {
		args[i] = md
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM customers WHERE merged_into IS NULL AND substr(birthday, 6, 5) IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+`) ORDER BY id`), args...)
	return collect(rows, err, scanID)
}
