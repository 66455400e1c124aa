package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Personas (人设) and channel codes (渠道活码) as stored. A code's receiving rules and
// welcome message are a JSON spec to the store (internal/channel.Spec); the columns beside it
// are what queries select on. Every contact added through a code is one channel_code_adds
// row, unique by the WeCom callback it came from, so a retried callback counts once.

// Persona is a staff persona shown to customers (健康管理专家, 养生导师 …).
type Persona struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Title     string    `json:"title,omitempty"`
	Intro     string    `json:"intro,omitempty"`
	AvatarURL string    `json:"avatar_url,omitempty"`
	StaffIDs  []int64   `json:"staff_ids"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func scanPersona(sc interface{ Scan(...any) error }) (*Persona, error) {
	var p Persona
	var created, updated int64
	if err := sc.Scan(&p.ID, &p.Name, &p.Title, &p.Intro, &p.AvatarURL, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt, p.StaffIDs = fromMS(created), fromMS(updated), []int64{}
	return &p, nil
}

const personaCols = `id, name, title, intro, avatar_url, created_at, updated_at`

// Personas lists every persona with its staff.
func (s *Store) Personas(ctx context.Context) ([]*Persona, error) {
	ps, err := rowsOf(scanPersona)(s.db.QueryContext(ctx, `SELECT `+personaCols+` FROM personas ORDER BY name`))
	if err != nil {
		return nil, err
	}
	byID := map[int64]*Persona{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	rows, err := s.db.QueryContext(ctx, `SELECT persona_id, staff_id FROM staff_personas ORDER BY staff_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var pid, sid int64
		if err := rows.Scan(&pid, &sid); err != nil {
			return nil, err
		}
		if p := byID[pid]; p != nil {
			p.StaffIDs = append(p.StaffIDs, sid)
		}
	}
	return ps, rows.Err()
}

// Persona reads one persona with its staff.
func (s *Store) Persona(ctx context.Context, id int64) (*Persona, error) {
	p, err := scanPersona(s.db.QueryRowContext(ctx, s.q(`SELECT `+personaCols+` FROM personas WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.StaffIDs, err = rowsOf(scanID)(s.db.QueryContext(ctx, s.q(`SELECT staff_id FROM staff_personas WHERE persona_id = ? ORDER BY staff_id`), id))
	return p, err
}

// StaffPersona is the persona of a staff member, nil when none.
func (s *Store) StaffPersona(ctx context.Context, staffID int64) (*Persona, error) {
	p, err := scanPersona(s.db.QueryRowContext(ctx, s.q(`SELECT p.id, p.name, p.title, p.intro, p.avatar_url, p.created_at, p.updated_at
		FROM personas p JOIN staff_personas sp ON sp.persona_id = p.id WHERE sp.staff_id = ?`), staffID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// SavePersona creates (p.ID 0) or updates a persona and links exactly p.StaffIDs to it (a
// staff member has one persona: linking moves them from another).
func (s *Store) SavePersona(ctx context.Context, p *Persona) error {
	return s.InTx(ctx, func(tx *Tx) error {
		now := tx.Now()
		for i, id := range p.StaffIDs {
			var n int
			if err := tx.row(`SELECT COUNT(*) FROM staff WHERE id = ?`, id).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return &customer.FieldError{Field: fmt.Sprintf("staff_ids[%d]", i), Reason: fmt.Sprintf("no staff member %d", id)}
			}
		}
		var err error
		if p.ID == 0 {
			err = tx.row(`INSERT INTO personas (name, title, intro, avatar_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
				p.Name, p.Title, p.Intro, p.AvatarURL, ms(now), ms(now)).Scan(&p.ID)
			p.CreatedAt = now
		} else {
			var res sql.Result
			res, err = tx.exec(`UPDATE personas SET name = ?, title = ?, intro = ?, avatar_url = ?, updated_at = ? WHERE id = ?`,
				p.Name, p.Title, p.Intro, p.AvatarURL, ms(now), p.ID)
			if err == nil {
				if n, _ := res.RowsAffected(); n == 0 {
					return ErrNotFound
				}
			}
		}
		if isUniqueViolation(err) {
			return &customer.FieldError{Field: "name", Reason: "a persona of this name exists"}
		}
		if err != nil {
			return fmt.Errorf("save persona: %w", err)
		}
		p.UpdatedAt = now
		if _, err := tx.exec(`DELETE FROM staff_personas WHERE persona_id = ?`, p.ID); err != nil {
			return err
		}
		for _, id := range uniqueIDs(p.StaffIDs) {
			if _, err := tx.exec(`INSERT INTO staff_personas (staff_id, persona_id) VALUES (?, ?)
				ON CONFLICT (staff_id) DO UPDATE SET persona_id = excluded.persona_id`, id, p.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeletePersona deletes a persona and unlinks its staff.
func (s *Store) DeletePersona(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`DELETE FROM staff_personas WHERE persona_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM personas WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// PersonaStaff lists the enabled staff members of a persona, by id, in tx.
func (tx *Tx) PersonaStaff(personaID int64) ([]int64, error) {
	return rowsOf(scanID)(tx.query(`SELECT sp.staff_id FROM staff_personas sp JOIN staff s ON s.id = sp.staff_id
		WHERE sp.persona_id = ? AND s.disabled_at IS NULL ORDER BY sp.staff_id`, personaID))
}

// Channel codes.

// Channel code statuses.
const (
	ChannelCodeActive  = "active"
	ChannelCodePaused  = "paused"
	ChannelCodeDeleted = "deleted"
)

// ChannelCodeRow is a channel code as stored.
type ChannelCodeRow struct {
	ID             int64           `json:"id"`
	Name           string          `json:"name"`
	State          string          `json:"state"`
	Channel        string          `json:"channel,omitempty"`
	Campaign       string          `json:"campaign,omitempty"`
	Source         string          `json:"source"`
	Spec           json.RawMessage `json:"spec"`
	Status         string          `json:"status"`
	LastStaffID    int64           `json:"last_staff_id,omitempty"`
	CurrentStaffID int64           `json:"current_staff_id,omitempty"`
	WeComConfigID  string          `json:"wecom_config_id,omitempty"`
	WeComQRCode    string          `json:"wecom_qr_code,omitempty"`
	WeComError     string          `json:"wecom_error,omitempty"`
	Adds           int             `json:"adds"`
	CreatedBy      int64           `json:"created_by,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

const channelCodeCols = `id, name, state, channel, campaign, source, spec, status, COALESCE(last_staff_id, 0), COALESCE(current_staff_id, 0),
	wecom_config_id, wecom_qr_code, wecom_error, COALESCE(created_by, 0), created_at, updated_at,
	(SELECT COUNT(*) FROM channel_code_adds a WHERE a.code_id = channel_codes.id)`

func scanChannelCode(sc interface{ Scan(...any) error }) (*ChannelCodeRow, error) {
	var r ChannelCodeRow
	var spec string
	var created, updated int64
	if err := sc.Scan(&r.ID, &r.Name, &r.State, &r.Channel, &r.Campaign, &r.Source, &spec, &r.Status, &r.LastStaffID, &r.CurrentStaffID,
		&r.WeComConfigID, &r.WeComQRCode, &r.WeComError, &r.CreatedBy, &created, &updated, &r.Adds); err != nil {
		return nil, err
	}
	r.Spec, r.CreatedAt, r.UpdatedAt = json.RawMessage(spec), fromMS(created), fromMS(updated)
	return &r, nil
}

func stateTaken(err error) error {
	if isUniqueViolation(err) {
		return &customer.FieldError{Field: "state", Reason: "another channel code uses this state"}
	}
	return err
}

// CreateChannelCode stores a new code in tx.
func (tx *Tx) CreateChannelCode(r *ChannelCodeRow) error {
	now := tx.Now()
	if r.Status == "" {
		r.Status = ChannelCodeActive
	}
	err := tx.row(`INSERT INTO channel_codes (name, state, channel, campaign, source, spec, status, current_staff_id, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, r.Name, r.State, r.Channel, r.Campaign, r.Source, string(r.Spec), r.Status,
		nullID(r.CurrentStaffID), nullID(r.CreatedBy), ms(now), ms(now)).Scan(&r.ID)
	if err != nil {
		return stateTaken(err)
	}
	r.CreatedAt, r.UpdatedAt = now, now
	return nil
}

// UpdateChannelCode saves r's name, state, labels, spec and status in tx.
func (tx *Tx) UpdateChannelCode(r *ChannelCodeRow) error {
	now := tx.Now()
	res, err := tx.exec(`UPDATE channel_codes SET name = ?, state = ?, channel = ?, campaign = ?, source = ?, spec = ?, status = ?, updated_at = ?
		WHERE id = ? AND status <> 'deleted'`, r.Name, r.State, r.Channel, r.Campaign, r.Source, string(r.Spec), r.Status, ms(now), r.ID)
	if err != nil {
		return stateTaken(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	r.UpdatedAt = now
	return nil
}

// ChannelCode reads a code (deleted ones too: their stats stay readable).
func (s *Store) ChannelCode(ctx context.Context, id int64) (*ChannelCodeRow, error) {
	r, err := scanChannelCode(s.db.QueryRowContext(ctx, s.q(`SELECT `+channelCodeCols+` FROM channel_codes WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// ChannelCode reads a code in tx.
func (tx *Tx) ChannelCode(id int64) (*ChannelCodeRow, error) {
	r, err := scanChannelCode(tx.row(`SELECT `+channelCodeCols+` FROM channel_codes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// ChannelCodeByState reads the live (not deleted) code with a state in tx; nil when none.
func (tx *Tx) ChannelCodeByState(state string) (*ChannelCodeRow, error) {
	r, err := scanChannelCode(tx.row(`SELECT `+channelCodeCols+` FROM channel_codes WHERE state = ? AND status <> 'deleted'`, state))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// ChannelCodePage is one page of codes.
type ChannelCodePage struct {
	Codes  []*ChannelCodeRow `json:"codes"`
	Total  int64             `json:"total"`
	Offset int               `json:"offset"`
	Limit  int               `json:"limit"`
}

// ListChannelCodes lists live codes newest first, optionally searching name, state, channel
// and campaign.
func (s *Store) ListChannelCodes(ctx context.Context, query string, offset, limit int) (*ChannelCodePage, error) {
	where, args := `status <> 'deleted'`, []any{}
	if q := strings.TrimSpace(query); q != "" {
		where += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(state) LIKE ? ESCAPE '\' OR LOWER(channel) LIKE ? ESCAPE '\' OR LOWER(campaign) LIKE ? ESCAPE '\')`
		like := "%" + contentLike(strings.ToLower(q)) + "%"
		args = append(args, like, like, like, like)
	}
	page := &ChannelCodePage{Offset: offset, Limit: limit}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM channel_codes WHERE `+where), args...).Scan(&page.Total); err != nil {
		return nil, err
	}
	codes, err := rowsOf(scanChannelCode)(s.db.QueryContext(ctx, s.q(`SELECT `+channelCodeCols+` FROM channel_codes WHERE `+where+` ORDER BY id DESC LIMIT ? OFFSET ?`),
		append(args, limit, offset)...))
	page.Codes = codes
	return page, err
}

// SetChannelCodeWeCom records the contact way WeCom made for a code (config id and QR code
// URL), or why making it failed.
func (s *Store) SetChannelCodeWeCom(ctx context.Context, id int64, configID, qrCode, failure string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE channel_codes SET wecom_config_id = ?, wecom_qr_code = ?, wecom_error = ? WHERE id = ?`),
		configID, qrCode, failure, id)
	return err
}

// SetChannelCodeReceivers records the staff member who received the last add and the one
// the code now points at.
func (tx *Tx) SetChannelCodeReceivers(id, last, current int64) error {
	_, err := tx.exec(`UPDATE channel_codes SET last_staff_id = ?, current_staff_id = ? WHERE id = ?`, nullID(last), nullID(current), id)
	return err
}

// ChannelAdd is one contact added through a code.
type ChannelAdd struct {
	ID             int64     `json:"id"`
	CodeID         int64     `json:"code_id"`
	EventKey       string    `json:"-"`
	CustomerID     int64     `json:"customer_id"`
	StaffID        int64     `json:"staff_id,omitempty"`
	ExternalUserID string    `json:"external_userid,omitempty"`
	Day            string    `json:"day"`
	AddedAt        time.Time `json:"added_at"`
	DeletedAt      time.Time `json:"deleted_at,omitzero"`
	Welcome        string    `json:"welcome,omitempty"`
}

// RecordChannelAdd records an add unless one with its event key exists, and reports whether
// it added it: the key makes a retried callback count once.
func (tx *Tx) RecordChannelAdd(a *ChannelAdd) (bool, error) {
	err := tx.row(`INSERT INTO channel_code_adds (code_id, event_key, customer_id, staff_id, external_userid, day, added_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING RETURNING id`,
		a.CodeID, a.EventKey, a.CustomerID, nullID(a.StaffID), a.ExternalUserID, a.Day, ms(a.AddedAt)).Scan(&a.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record channel add: %w", err)
	}
	return true, nil
}

// OpenChannelAdd reports whether a customer's add to a staff member through a code is on
// record and not deleted since, in tx: WeCom reports one add twice for a code without
// verification (add_half_external_contact, then add_external_contact once the staff member
// confirms), and it counts once.
func (tx *Tx) OpenChannelAdd(codeID, customerID, staffID int64) (bool, error) {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM channel_code_adds WHERE code_id = ? AND customer_id = ? AND COALESCE(staff_id, 0) = ? AND deleted_at IS NULL`,
		codeID, customerID, staffID).Scan(&n)
	return n > 0, err
}

// ChannelAddsOn counts a code's adds on a day per receiving staff member, in tx.
func (tx *Tx) ChannelAddsOn(codeID int64, day string) (map[int64]int, error) {
	rows, err := tx.query(`SELECT COALESCE(staff_id, 0), COUNT(*) FROM channel_code_adds WHERE code_id = ? AND day = ? GROUP BY staff_id`, codeID, day)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// MarkChannelDeleted marks the open adds of a customer to a staff member deleted (the customer
// deleted the staff member: del_follow_user) and returns how many it marked.
func (tx *Tx) MarkChannelDeleted(customerID, staffID int64, at time.Time) (int64, error) {
	res, err := tx.exec(`UPDATE channel_code_adds SET deleted_at = ? WHERE customer_id = ? AND COALESCE(staff_id, 0) = ? AND deleted_at IS NULL`,
		ms(at), customerID, staffID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SetChannelAddWelcome records what became of an add's welcome message ("sent", "failed: …").
func (s *Store) SetChannelAddWelcome(ctx context.Context, addID int64, outcome string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE channel_code_adds SET welcome = ? WHERE id = ?`), truncateRunes(outcome, 300), addID)
	return err
}

// ChannelAdds lists a code's adds, newest first.
func (s *Store) ChannelAdds(ctx context.Context, codeID int64, limit int) ([]*ChannelAdd, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, code_id, customer_id, COALESCE(staff_id, 0), external_userid, day, added_at, COALESCE(deleted_at, 0), welcome
		FROM channel_code_adds WHERE code_id = ? ORDER BY id DESC LIMIT ?`), codeID, limit)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (*ChannelAdd, error) {
		var a ChannelAdd
		var added, deleted int64
		if err := sc.Scan(&a.ID, &a.CodeID, &a.CustomerID, &a.StaffID, &a.ExternalUserID, &a.Day, &added, &deleted, &a.Welcome); err != nil {
			return nil, err
		}
		a.AddedAt, a.DeletedAt = fromMS(added), fromMS(deleted)
		return &a, nil
	})
}

// ChannelDayStats is one day of a code's results: contacts added that day, of them deleted
// since, and those who bought after adding, with their GMV (minor units, net of refunds).
type ChannelDayStats struct {
	Day      string `json:"day"`
	Adds     int    `json:"adds"`
	Deletes  int    `json:"deletes"`
	Buyers   int    `json:"buyers"`
	GMVMinor int64  `json:"gmv_minor"`
}

// ChannelCodeStats is a code's results per add day from fromDay to toDay (YYYY-MM-DD,
// inclusive), days without adds left out.
func (s *Store) ChannelCodeStats(ctx context.Context, codeID int64, fromDay, toDay string) ([]ChannelDayStats, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT a.day, COUNT(*), COUNT(a.deleted_at),
		COUNT(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = a.customer_id AND o.paid_at >= a.added_at) THEN a.customer_id END),
		COALESCE(SUM((SELECT COALESCE(SUM(o.amount_minor - o.refunded_minor), 0) FROM orders o WHERE o.customer_id = a.customer_id AND o.paid_at >= a.added_at)), 0)
		FROM channel_code_adds a WHERE a.code_id = ? AND a.day >= ? AND a.day <= ? GROUP BY a.day ORDER BY a.day`), codeID, fromDay, toDay)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (ChannelDayStats, error) {
		var d ChannelDayStats
		return d, sc.Scan(&d.Day, &d.Adds, &d.Deletes, &d.Buyers, &d.GMVMinor)
	})
}

// SetChannelSource names the source a state stands for in tx (the WeCom worker reads it for
// every contact added with that state; see WeComChannelSource). A code's old state keeps its
// source: QR codes printed with it still attribute.
func (tx *Tx) SetChannelSource(state, source string) error {
	_, err := tx.exec(`INSERT INTO wecom_channel_codes (state, source, created_at) VALUES (?, ?, ?)
		ON CONFLICT (state) DO UPDATE SET source = excluded.source`, state, source, ms(tx.Now()))
	return err
}

// ExistingTags returns the ids among ids that are tags now, in tx (a channel code's tags may
// have been deleted since it was saved).
func (tx *Tx) ExistingTags(ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return []int64{}, nil
	}
	return rowsOf(scanID)(tx.query(`SELECT id FROM tags WHERE id IN (`+inList(len(ids))+`) ORDER BY id`, idArgs(ids)...))
}

// StaffEnabled reports whether a staff member exists and is enabled, in tx.
func (tx *Tx) StaffEnabled(id int64) (bool, error) {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM staff WHERE id = ? AND disabled_at IS NULL`, id).Scan(&n)
	return n > 0, err
}
