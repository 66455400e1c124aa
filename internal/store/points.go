package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Member points (internal/model points.go). Every change of a balance is one row of the
// append-only points_ledger, written in the transaction that updates customer_points; the
// ledger's unique idempotency key makes every source replay-safe: an order earns under
// "order:ID" (a refund reverses under "order:ID@KEPT"), an event under "event:MESSAGEID", an
// expiry under "expire:LOT", an API call under the caller's key. Positive entries open a lot
// in points_lots; spends, reversals and expiry consume lots oldest first (FIFO), so the lots'
// remaining points always add up to the positive part of the balance.

// Setting keys of the points configuration and of the catch-up runs' positions.
const (
	pointsConfigKey    = "model.points.config"
	pointsOrderMarkKey = "model.points.order_mark" // "ID UPDATED": newest order id seen, run start (ms)
	pointsEventMarkKey = "model.points.event_mark" // id of the newest event seen
)

// orderMarkOverlap is how far back each order catch-up re-reads before its mark: an order
// updated in a transaction that committed after a later one is still seen (entries are
// idempotent, so re-reading costs only the reading).
const orderMarkOverlap = time.Minute

// orderIDOverlap is how many order ids before its mark each order catch-up re-reads, for the
// same reason (PostgreSQL hands out ids before commit).
const orderIDOverlap = 1000

// PointsConfig reads the points configuration, or the default when none was saved.
func (s *Store) PointsConfig(ctx context.Context) (model.PointsConfig, error) {
	cfg := model.DefaultPointsConfig()
	return cfg, s.jsonSetting(ctx, pointsConfigKey, &cfg)
}

// SetPointsConfig validates and saves the points configuration.
func (s *Store) SetPointsConfig(ctx context.Context, cfg model.PointsConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return s.setJSONSetting(ctx, pointsConfigKey, cfg)
}

// lockPoints makes sure the customer has a balance row and locks it until the transaction
// ends (PostgreSQL; SQLite has one writer), so that checks of the balance and of daily caps
// hold until the entry is written.
func (tx *Tx) lockPoints(customerID int64) (int64, error) {
	if _, err := tx.exec(`INSERT INTO customer_points (customer_id, balance, updated_at) VALUES (?, 0, ?) ON CONFLICT (customer_id) DO NOTHING`, customerID, ms(tx.Now())); err != nil {
		return 0, err
	}
	q := `SELECT balance FROM customer_points WHERE customer_id = ?`
	if tx.s.engine == Postgres {
		q += ` FOR UPDATE`
	}
	var bal int64
	return bal, tx.row(q, customerID).Scan(&bal)
}

// pointsGuard may refuse an entry after the balance is locked (insufficient points, a daily
// cap reached): it returns false to skip the entry without error.
type pointsGuard func(balance int64) (bool, error)

// postPoints writes one ledger entry and its effect on the balance and the lots. An entry whose
// key is already in the ledger is not written: e.ID is set to the existing entry and postPoints
// reports false. Due lots of the customer expire first, so a spend never uses expired points.
// preferLot, when set, is the lot a negative entry consumes first (a refund takes back the
// order's own points).
func (tx *Tx) postPoints(e *model.PointsEntry, preferLot int64, guard pointsGuard) (bool, error) {
	bal, err := tx.lockPoints(e.CustomerID)
	if err != nil {
		return false, err
	}
	var id int64
	err = tx.row(`SELECT id FROM points_ledger WHERE idem_key = ?`, e.Key).Scan(&id)
	if err == nil {
		e.ID = id
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if e.Kind != model.PointsExpire {
		n, _, err := tx.expireDue(e.CustomerID, tx.Now())
		if err != nil {
			return false, err
		}
		bal -= n
	}
	if guard != nil {
		ok, err := guard(bal)
		if err != nil || !ok {
			return false, err
		}
	}
	if e.At.IsZero() {
		e.At = tx.Now()
	}
	var staffID, expires any
	if e.StaffID > 0 {
		staffID = e.StaffID
	}
	if !e.ExpiresAt.IsZero() {
		expires = ms(e.ExpiresAt)
	}
	err = tx.row(`INSERT INTO points_ledger (customer_id, delta, kind, rule, reason, ref, idem_key, staff_id, at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.CustomerID, e.Delta, e.Kind, e.Rule, e.Reason, e.Ref, e.Key, staffID, ms(e.At), expires).Scan(&e.ID)
	if err != nil {
		return false, fmt.Errorf("points ledger: %w", err)
	}
	switch {
	case e.Delta > 0:
		// Points that pay back a negative balance open no lot.
		if lot := min(e.Delta, bal+e.Delta); lot > 0 {
			if _, err := tx.exec(`INSERT INTO points_lots (ledger_id, customer_id, remaining, at, expires_at) VALUES (?, ?, ?, ?, ?)`, e.ID, e.CustomerID, lot, ms(e.At), expires); err != nil {
				return false, err
			}
		}
	case e.Delta < 0 && e.Kind != model.PointsExpire:
		if err := tx.consumeLots(e.CustomerID, -e.Delta, preferLot); err != nil {
			return false, err
		}
	}
	var earned, spent, expired int64
	switch e.Kind {
	case model.PointsEarn, model.PointsAdjust:
		earned = e.Delta
	case model.PointsSpend:
		spent = -e.Delta
	case model.PointsExpire:
		expired = -e.Delta
	}
	_, err = tx.exec(`UPDATE customer_points SET balance = balance + ?, earned = earned + ?, spent = spent + ?, expired = expired + ?, updated_at = ? WHERE customer_id = ?`,
		e.Delta, earned, spent, expired, ms(tx.Now()), e.CustomerID)
	tx.NoteModel("points", false, e.CustomerID) // the audience engine's points column
	return true, err
}

// consumeLots takes n points from the customer's lots, preferLot first, then oldest first.
// Points beyond the lots (a refund of points already spent) leave the balance negative.
func (tx *Tx) consumeLots(customerID, n, preferLot int64) error {
	type lot struct{ id, remaining int64 }
	rows, err := tx.query(`SELECT ledger_id, remaining FROM points_lots WHERE customer_id = ? ORDER BY at, ledger_id`, customerID)
	lots, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (lot, error) {
		var l lot
		return l, sc.Scan(&l.id, &l.remaining)
	})
	if err != nil {
		return err
	}
	for i, l := range lots {
		if l.id == preferLot && i > 0 {
			copy(lots[1:i+1], lots[:i])
			lots[0] = l
			break
		}
	}
	for _, l := range lots {
		if n == 0 {
			break
		}
		take := min(n, l.remaining)
		n -= take
		if take == l.remaining {
			_, err = tx.exec(`DELETE FROM points_lots WHERE ledger_id = ?`, l.id)
		} else {
			_, err = tx.exec(`UPDATE points_lots SET remaining = remaining - ? WHERE ledger_id = ?`, take, l.id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// expireDue expires the customer's lots due at now and returns the points and entries expired.
func (tx *Tx) expireDue(customerID int64, now time.Time) (points, entries int64, err error) {
	type lot struct{ id, remaining, expires int64 }
	rows, err := tx.query(`SELECT ledger_id, remaining, expires_at FROM points_lots WHERE customer_id = ? AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY at, ledger_id`, customerID, ms(now))
	lots, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (lot, error) {
		var l lot
		return l, sc.Scan(&l.id, &l.remaining, &l.expires)
	})
	if err != nil {
		return 0, 0, err
	}
	for _, l := range lots {
		e := &model.PointsEntry{CustomerID: customerID, Delta: -l.remaining, Kind: model.PointsExpire, Rule: model.ExpiryRule,
			Reason: "积分过期", Ref: "lot:" + strconv.FormatInt(l.id, 10), Key: "expire:" + strconv.FormatInt(l.id, 10), At: fromMS(l.expires)}
		ok, err := tx.postPoints(e, 0, nil)
		if err != nil {
			return 0, 0, err
		}
		if _, err := tx.exec(`DELETE FROM points_lots WHERE ledger_id = ?`, l.id); err != nil {
			return 0, 0, err
		}
		if ok {
			points += l.remaining
			entries++
		}
	}
	return points, entries, nil
}

// ExpirePoints expires every lot due at now, oldest first, in transactions of at most 500
// customers, and returns the points and entries expired. Running it again expires nothing.
func (s *Store) ExpirePoints(ctx context.Context, now time.Time) (points, entries int64, err error) {
	for {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT DISTINCT customer_id FROM points_lots WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY customer_id LIMIT 500`), ms(now))
		ids, err := collect(rows, err, scanID)
		if err != nil {
			return points, entries, fmt.Errorf("expire points: %w", err)
		}
		if len(ids) == 0 {
			return points, entries, nil
		}
		err = s.InTx(ctx, func(tx *Tx) error {
			for _, id := range ids {
				if _, err := tx.lockPoints(id); err != nil {
					return err
				}
				p, n, err := tx.expireDue(id, now)
				if err != nil {
					return err
				}
				points += p
				entries += n
			}
			return nil
		})
		if err != nil {
			return points, entries, fmt.Errorf("expire points: %w", err)
		}
	}
}

// SpendPoints redeems points (positive) from a customer's balance: 422 naming points when the
// balance is short, nothing written. key makes a retried request idempotent: the entry
// already written under it is returned with false.
func (s *Store) SpendPoints(ctx context.Context, customerID, points int64, reason, key string, staffID int64) (*model.PointsEntry, bool, error) {
	if points < 1 || points > model.MaxPointsChange {
		return nil, false, &customer.FieldError{Field: "points", Reason: fmt.Sprintf("must be between 1 and %d", model.MaxPointsChange)}
	}
	e := &model.PointsEntry{CustomerID: customerID, Delta: -points, Kind: model.PointsSpend, Rule: model.ManualRule, Reason: reason, Key: key, StaffID: staffID}
	return s.manualPoints(ctx, e)
}

// AdjustPoints adds (positive) or removes (negative) points with the operator's reason; a
// removal beyond the balance is refused naming points. Added points expire like earned ones.
func (s *Store) AdjustPoints(ctx context.Context, customerID, delta int64, reason, key string, staffID int64) (*model.PointsEntry, bool, error) {
	if delta == 0 || delta > model.MaxPointsChange || delta < -model.MaxPointsChange {
		return nil, false, &customer.FieldError{Field: "points", Reason: fmt.Sprintf("must be non-zero and between -%d and %d", model.MaxPointsChange, model.MaxPointsChange)}
	}
	if strings.TrimSpace(reason) == "" {
		return nil, false, &customer.FieldError{Field: "reason", Reason: "an adjustment needs a reason"}
	}
	e := &model.PointsEntry{CustomerID: customerID, Delta: delta, Kind: model.PointsAdjust, Rule: model.ManualRule, Reason: strings.TrimSpace(reason), Key: key, StaffID: staffID}
	return s.manualPoints(ctx, e)
}

func (s *Store) manualPoints(ctx context.Context, e *model.PointsEntry) (*model.PointsEntry, bool, error) {
	if len(e.Reason) > 500 {
		return nil, false, &customer.FieldError{Field: "reason", Reason: "at most 500 bytes"}
	}
	if e.Key == "" {
		b := make([]byte, 12)
		rand.Read(b)
		e.Key = "auto:" + hex.EncodeToString(b)
	} else if len(e.Key) > 200 {
		return nil, false, &customer.FieldError{Field: "idempotency_key", Reason: "at most 200 bytes"}
	} else {
		// Callers' keys live in their own name space, apart from the ledger's own keys.
		e.Key = "api:" + e.Key
	}
	cfg, err := s.PointsConfig(ctx)
	if err != nil {
		return nil, false, err
	}
	if e.Delta > 0 {
		e.ExpiresAt = cfg.ExpiresAt(s.now())
	}
	var wrote bool
	err = s.InTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.row(`SELECT COUNT(*) FROM customers WHERE id = ? AND merged_into IS NULL`, e.CustomerID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		var err error
		wrote, err = tx.postPoints(e, 0, func(bal int64) (bool, error) {
			if e.Delta < 0 && bal+e.Delta < 0 {
				return false, &customer.FieldError{Field: "points", Reason: fmt.Sprintf("insufficient balance: %d available, %d requested", max(bal, 0), -e.Delta)}
			}
			return true, nil
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if !wrote {
		got, err := s.pointsEntry(ctx, e.ID)
		return got, false, err
	}
	return e, true, nil
}

const ledgerCols = `id, customer_id, delta, kind, rule, reason, ref, idem_key, COALESCE(staff_id, 0), at, expires_at`

func scanLedger(sc interface{ Scan(...any) error }) (*model.PointsEntry, error) {
	var (
		e       model.PointsEntry
		at      int64
		expires sql.NullInt64
	)
	if err := sc.Scan(&e.ID, &e.CustomerID, &e.Delta, &e.Kind, &e.Rule, &e.Reason, &e.Ref, &e.Key, &e.StaffID, &at, &expires); err != nil {
		return nil, err
	}
	e.At, e.ExpiresAt = fromMS(at), nullMS(expires)
	return &e, nil
}

func (s *Store) pointsEntry(ctx context.Context, id int64) (*model.PointsEntry, error) {
	return scanLedger(s.db.QueryRowContext(ctx, s.q(`SELECT `+ledgerCols+` FROM points_ledger WHERE id = ?`), id))
}

// PointsLedger returns a customer's ledger, newest first: limit entries with ids below
// before (0: the newest).
func (s *Store) PointsLedger(ctx context.Context, customerID, before int64, limit int) ([]*model.PointsEntry, error) {
	q, args := `SELECT `+ledgerCols+` FROM points_ledger WHERE customer_id = ?`, []any{customerID}
	if before > 0 {
		q += ` AND id < ?`
		args = append(args, before)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+` ORDER BY id DESC LIMIT ?`), append(args, limit)...)
	return collect(rows, err, scanLedger)
}

// PointsBalance returns a customer's balance at now (zeros before any entry; points past
// their expiry are counted as expired even before the expiry run writes them off) and the
// points of it that expire within 30 days of now.
func (s *Store) PointsBalance(ctx context.Context, customerID int64, now time.Time) (*model.PointsBalance, error) {
	b := &model.PointsBalance{CustomerID: customerID}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT balance, earned, spent, expired FROM customer_points WHERE customer_id = ?`), customerID).Scan(&b.Balance, &b.Earned, &b.Spent, &b.Expired)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	var due int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(CASE WHEN expires_at <= ? THEN remaining ELSE 0 END), 0), COALESCE(SUM(remaining), 0) FROM points_lots
		WHERE customer_id = ? AND expires_at IS NOT NULL AND expires_at <= ?`), ms(now), customerID, ms(now.Add(30*24*time.Hour))).Scan(&due, &b.ExpiringSoon)
	// Points past their expiry are not available even before the expiry run writes them off.
	b.Balance -= due
	b.Expired += due
	b.ExpiringSoon -= due
	return b, err
}

// orderRef names an order in the ledger.
func orderRef(id int64) string { return "order:" + strconv.FormatInt(id, 10) }

// pointsOrder is what the order catch-up reads of an order.
type pointsOrder struct {
	id, customer, amount, refunded, paid, updated int64
	status, currency                              string
}

// EarnOrderPoints brings the ledger in line with the orders added or changed since the last
// run: a paid CNY order earns cfg.OrderPoints under "order:ID" (at its payment time, expiring
// ExpiryDays later; points that would already have expired are not earned); a refund since
// reverses the order's points in proportion to the amount refunded. New orders are found by
// id (an import of old orders is still new), changed ones by updated_at; both passes re-read
// a little before their marks, so a transaction that committed late is still seen, and the
// keys make re-reading harmless. It returns the entries written; a second run over unchanged
// orders writes none.
func (s *Store) EarnOrderPoints(ctx context.Context, cfg model.PointsConfig, now time.Time) (int, error) {
	if cfg.PerYuan == 0 {
		return 0, nil
	}
	runStart := ms(s.now())
	idMark, updMark := int64(0), int64(-1)
	if v, ok, err := s.Setting(ctx, pointsOrderMarkKey); err != nil {
		return 0, err
	} else if ok {
		fmt.Sscanf(v, "%d %d", &idMark, &updMark)
		idMark = max(0, idMark-orderIDOverlap)
		updMark -= orderMarkOverlap.Milliseconds()
	}
	const batch = 2000
	written, newestID := 0, idMark
	pass := func(query string, next func(last pointsOrder) []any, args []any) error {
		for {
			rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, customer_id, amount_minor, refunded_minor, paid_at, updated_at, status, currency FROM orders WHERE `+query+` LIMIT ?`), append(args, batch)...)
			orders, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (pointsOrder, error) {
				var o pointsOrder
				return o, sc.Scan(&o.id, &o.customer, &o.amount, &o.refunded, &o.paid, &o.updated, &o.status, &o.currency)
			})
			if err != nil {
				return err
			}
			if len(orders) == 0 {
				return nil
			}
			n, err := s.earnOrders(ctx, &cfg, orders, now)
			written += n
			if err != nil {
				return err
			}
			last := orders[len(orders)-1]
			newestID = max(newestID, last.id)
			if len(orders) < batch {
				return nil
			}
			args = next(last)
		}
	}
	if err := pass(`id > ? ORDER BY id`, func(o pointsOrder) []any { return []any{o.id} }, []any{idMark}); err != nil {
		return written, fmt.Errorf("order points: %w", err)
	}
	if updMark >= 0 {
		if err := pass(`(updated_at > ? OR (updated_at = ? AND id > ?)) ORDER BY updated_at, id`,
			func(o pointsOrder) []any { return []any{o.updated, o.updated, o.id} }, []any{updMark, updMark, 0}); err != nil {
			return written, fmt.Errorf("order points: %w", err)
		}
	}
	return written, s.SetSetting(ctx, pointsOrderMarkKey, fmt.Sprintf("%d %d", newestID, runStart))
}

// earnOrders writes the entries of one batch of orders in one transaction: first earns in bulk
// (one multi-row insert each for ledger, lots and balances), reversals one by one.
func (s *Store) earnOrders(ctx context.Context, cfg *model.PointsConfig, orders []pointsOrder, now time.Time) (int, error) {
	written := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		written = 0
		type seen struct{ initial, total, lot, expires int64 }
		have := map[string]*seen{}
		for start := 0; start < len(orders); start += inChunk {
			part := orders[start:min(start+inChunk, len(orders))]
			args := make([]any, len(part))
			for i, o := range part {
				args[i] = orderRef(o.id)
			}
			rows, err := tx.query(`SELECT ref, idem_key, delta, id, COALESCE(expires_at, 0) FROM points_ledger WHERE ref <> '' AND ref IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var ref, key string
				var delta, id, expires int64
				if err := rows.Scan(&ref, &key, &delta, &id, &expires); err != nil {
					rows.Close()
					return err
				}
				x := have[ref]
				if x == nil {
					x = &seen{}
					have[ref] = x
				}
				x.total += delta
				if key == ref {
					x.initial, x.lot, x.expires = delta, id, expires
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		var (
			earns     []*model.PointsEntry
			follows   = map[string]*model.PointsEntry{}
			reversals []*model.PointsEntry
			lots      []int64
		)
		for _, o := range orders {
			ref := orderRef(o.id)
			net := o.amount - o.refunded
			if o.status == event.Refunded {
				net = 0
			}
			x := have[ref]
			if x == nil {
				if o.currency != "CNY" || net <= 0 {
					continue
				}
				pts := cfg.OrderPoints(o.amount)
				at := fromMS(o.paid)
				exp := cfg.ExpiresAt(at)
				if pts == 0 || (!exp.IsZero() && !exp.After(now)) {
					continue
				}
				earns = append(earns, &model.PointsEntry{CustomerID: o.customer, Delta: pts, Kind: model.PointsEarn, Rule: model.OrderRule,
					Reason: "消费得积分", Ref: ref, Key: ref, At: at, ExpiresAt: exp})
				if kept := model.KeptPoints(pts, o.amount, net); kept != pts { // refunded before its first run
					follows[ref] = &model.PointsEntry{CustomerID: o.customer, Delta: kept - pts, Kind: model.PointsEarn, Rule: model.OrderRule,
						Reason: "退款扣回积分", Ref: ref, Key: ref + "@" + strconv.FormatInt(kept, 10), At: now}
				}
				continue
			}
			if x.expires != 0 && x.expires <= ms(now) {
				continue // the order's points have expired: a late refund takes nothing back
			}
			if kept := model.KeptPoints(x.initial, o.amount, net); kept != x.total {
				reversals = append(reversals, &model.PointsEntry{CustomerID: o.customer, Delta: kept - x.total, Kind: model.PointsEarn, Rule: model.OrderRule,
					Reason: "退款扣回积分", Ref: ref, Key: ref + "@" + strconv.FormatInt(kept, 10), At: now})
				lots = append(lots, x.lot)
			}
		}
		n, err := tx.bulkEarn(earns, follows)
		if err != nil {
			return err
		}
		written += n
		for i, e := range reversals {
			ok, err := tx.postPoints(e, lots[i], nil)
			if err != nil {
				return err
			}
			if ok {
				written++
			}
		}
		return nil
	})
	return written, err
}

// bulkEarn writes positive earn entries, each with the negative entry follows holds under its
// key (an order refunded before its first run: the earn and its reversal), in bulk for
// customers whose balance is not negative (the pair opens one lot of what is left), one by one
// for the others (their points first pay back what they owe). Entries whose key is already in
// the ledger are skipped.
func (tx *Tx) bulkEarn(earns []*model.PointsEntry, follows map[string]*model.PointsEntry) (int, error) {
	if len(earns) == 0 {
		return 0, nil
	}
	owing := map[int64]bool{}
	rows, err := tx.query(`SELECT customer_id FROM customer_points WHERE balance < 0`)
	ids, err := collect(rows, err, scanID)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		owing[id] = true
	}
	written := 0
	var bulk []*model.PointsEntry
	for _, e := range earns {
		if !owing[e.CustomerID] {
			bulk = append(bulk, e)
			continue
		}
		ok, err := tx.postPoints(e, 0, nil)
		if err != nil {
			return written, err
		}
		if ok {
			written++
		}
		if f := follows[e.Key]; f != nil && ok {
			if ok, err = tx.postPoints(f, e.ID, nil); err != nil {
				return written, err
			}
			if ok {
				written++
			}
		}
	}
	nowMS := ms(tx.Now())
	const per = 500
	for start := 0; start < len(bulk); start += per {
		part := bulk[start:min(start+per, len(bulk))]
		args := make([]any, 0, len(part)*9)
		byKey := map[string]*model.PointsEntry{}
		add := func(e *model.PointsEntry) {
			var exp any
			if !e.ExpiresAt.IsZero() {
				exp = ms(e.ExpiresAt)
			}
			args = append(args, e.CustomerID, e.Delta, e.Kind, e.Rule, e.Reason, e.Ref, e.Key, ms(e.At), exp)
			byKey[e.Key] = e
		}
		for _, e := range part {
			add(e)
			if f := follows[e.Key]; f != nil {
				add(f)
			}
		}
		rows, err := tx.query(`INSERT INTO points_ledger (customer_id, delta, kind, rule, reason, ref, idem_key, at, expires_at) VALUES `+placeholders(len(byKey), 9)+
			` ON CONFLICT (idem_key) DO NOTHING RETURNING id, idem_key`, args...)
		if err != nil {
			return written, err
		}
		var done, lots []*model.PointsEntry
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return written, err
			}
			e := byKey[key]
			e.ID = id
			done = append(done, e)
			if e.Delta > 0 {
				lots = append(lots, e)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return written, err
		}
		written += len(done)
		// A pair's lot holds what its reversal left; a fully reversed earn opens none.
		lots = slices.DeleteFunc(lots, func(e *model.PointsEntry) bool { return lotOf(e, follows) == 0 })
		if err := tx.insertRows("points_lots", []string{"ledger_id", "customer_id", "remaining", "at", "expires_at"}, len(lots), func(i int, args []any) ([]any, error) {
			var exp any
			if !lots[i].ExpiresAt.IsZero() {
				exp = ms(lots[i].ExpiresAt)
			}
			return append(args, lots[i].ID, lots[i].CustomerID, lotOf(lots[i], follows), ms(lots[i].At), exp), nil
		}); err != nil {
			return written, err
		}
		sums := map[int64]int64{}
		var order []int64
		for _, e := range done {
			if _, ok := sums[e.CustomerID]; !ok {
				order = append(order, e.CustomerID)
			}
			sums[e.CustomerID] += e.Delta
		}
		slices.Sort(order) // row locks in id order, as every other multi-customer writer takes them
		for s := 0; s < len(order); s += per {
			cs := order[s:min(s+per, len(order))]
			args := make([]any, 0, len(cs)*4)
			for _, c := range cs {
				args = append(args, c, sums[c], sums[c], nowMS)
			}
			if _, err := tx.exec(`INSERT INTO customer_points (customer_id, balance, earned, updated_at) VALUES `+placeholders(len(cs), 4)+
				` ON CONFLICT (customer_id) DO UPDATE SET balance = customer_points.balance + excluded.balance, earned = customer_points.earned + excluded.earned, updated_at = excluded.updated_at`, args...); err != nil {
				return written, err
			}
		}
		tx.NoteModel("points", false, order...)
	}
	return written, nil
}

// lotOf is what an earn entry leaves in its lot after its follow (written with it).
func lotOf(e *model.PointsEntry, follows map[string]*model.PointsEntry) int64 {
	if f := follows[e.Key]; f != nil {
		return e.Delta + f.Delta
	}
	return e.Delta
}

// earnEvents writes the points of the events that have a rule in cfg, each under
// "event:MESSAGEID", within the rule's daily cap (counted per customer and Shanghai day of the
// event's time). Events whose points would already have expired earn nothing. The events'
// customers are locked first (their balance rows, in id order), so a concurrent batch
// counting the same caps waits for this one; entries are then written in bulk. It returns the
// entries written.
func (tx *Tx) earnEvents(cfg *model.PointsConfig, evts []*event.Event) (int, error) {
	now := tx.Now()
	type pending struct {
		ev   *event.Event
		rule model.PointsEventRule
		day  segment.Day
	}
	var todo []pending
	customers := map[int64]bool{}
	for _, ev := range evts {
		if ev.CustomerID <= 0 || ev.Type != "track" {
			continue
		}
		rule, ok := cfg.EventRule(ev.Name)
		if !ok {
			continue
		}
		if exp := cfg.ExpiresAt(ev.Timestamp); !exp.IsZero() && !exp.After(now) {
			continue
		}
		todo = append(todo, pending{ev, rule, segment.DayOf(ev.Timestamp, segment.Shanghai)})
		customers[ev.CustomerID] = true
	}
	if len(todo) == 0 {
		return 0, nil
	}
	ids := slices.Sorted(maps.Keys(customers))
	if err := tx.lockPointsMany(ids); err != nil {
		return 0, err
	}
	// Keys already credited, and what each capped (customer, rule, day) has earned so far.
	keys := make([]any, len(todo))
	for i, p := range todo {
		keys[i] = "event:" + p.ev.MessageID
	}
	done := map[string]bool{}
	for start := 0; start < len(keys); start += inChunk {
		part := keys[start:min(start+inChunk, len(keys))]
		rows, err := tx.query(`SELECT idem_key FROM points_ledger WHERE idem_key IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`, part...)
		got, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
			var k string
			return k, sc.Scan(&k)
		})
		if err != nil {
			return 0, err
		}
		for _, k := range got {
			done[k] = true
		}
	}
	type capKey struct {
		customer int64
		rule     string
		day      segment.Day
	}
	used := map[capKey]int{}
	var capped []any
	minDay, maxDay := todo[0].day, todo[0].day
	for _, p := range todo {
		if p.rule.DailyCap > 0 {
			capped = append(capped, "event:"+p.rule.Event)
		}
		minDay, maxDay = min(minDay, p.day), max(maxDay, p.day)
	}
	if len(capped) > 0 {
		for start := 0; start < len(ids); start += inChunk {
			part := ids[start:min(start+inChunk, len(ids))]
			args := []any{ms(minDay.Start(segment.Shanghai)), ms((maxDay + 1).Start(segment.Shanghai))}
			for _, id := range part {
				args = append(args, id)
			}
			rows, err := tx.query(`SELECT customer_id, rule, at FROM points_ledger WHERE kind = 'earn' AND at >= ? AND at < ? AND customer_id IN (`+
				strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`) AND rule LIKE 'event:%'`, args...)
			if err != nil {
				return 0, err
			}
			for rows.Next() {
				var k capKey
				var at int64
				if err := rows.Scan(&k.customer, &k.rule, &at); err != nil {
					rows.Close()
					return 0, err
				}
				k.day = segment.DayOf(fromMS(at), segment.Shanghai)
				used[k]++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, err
			}
		}
	}
	slices.SortStableFunc(todo, func(a, b pending) int { return a.ev.Timestamp.Compare(b.ev.Timestamp) })
	var earns []*model.PointsEntry
	for _, p := range todo {
		key := "event:" + p.ev.MessageID
		if done[key] {
			continue
		}
		done[key] = true // the same message twice in one batch
		ruleName := "event:" + p.rule.Event
		if p.rule.DailyCap > 0 {
			k := capKey{p.ev.CustomerID, ruleName, p.day}
			if used[k] >= p.rule.DailyCap {
				continue
			}
			used[k]++
		}
		earns = append(earns, &model.PointsEntry{CustomerID: p.ev.CustomerID, Delta: p.rule.Points, Kind: model.PointsEarn, Rule: ruleName, Reason: p.rule.Event,
			Ref: key, Key: key, At: p.ev.Timestamp, ExpiresAt: cfg.ExpiresAt(p.ev.Timestamp)})
	}
	return tx.bulkEarn(earns, nil)
}

// lockPointsMany makes sure the customers (sorted) have balance rows and, on PostgreSQL, locks
// them until the transaction ends, in id order so that two batches cannot deadlock.
func (tx *Tx) lockPointsMany(ids []int64) error {
	nowMS := ms(tx.Now())
	for start := 0; start < len(ids); start += inChunk {
		part := ids[start:min(start+inChunk, len(ids))]
		args := make([]any, 0, 2*len(part))
		for _, id := range part {
			args = append(args, id, nowMS)
		}
		vals := strings.TrimSuffix(strings.Repeat("(?, 0, ?),", len(part)), ",")
		if _, err := tx.exec(`INSERT INTO customer_points (customer_id, balance, updated_at) VALUES `+vals+` ON CONFLICT (customer_id) DO NOTHING`, args...); err != nil {
			return err
		}
		if tx.s.engine == Postgres {
			in := make([]any, len(part))
			for i, id := range part {
				in[i] = id
			}
			if _, err := tx.exec(`SELECT customer_id FROM customer_points WHERE customer_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`) ORDER BY customer_id FOR UPDATE`, in...); err != nil {
				return err
			}
		}
	}
	return nil
}

// pointsSavepoint isolates the points hook's writes inside the ingestion transaction.
const pointsSavepoint = "points_rules"

// PointsAfterStore returns the ingestion hook (ingest.Options.AfterStore) that earns the
// points of event rules in the transaction that stores the events, so a check-in shows its
// points at once. Like the tag rules' hook it writes inside a savepoint: a failure is logged,
// its writes undone and the events still commit; the next points run (EarnEventPoints)
// catches the missed events up.
func (s *Store) PointsAfterStore(log *slog.Logger) func(tx *Tx, evts []*event.Event) error {
	if log == nil {
		log = slog.Default()
	}
	return func(tx *Tx, evts []*event.Event) error {
		if len(evts) == 0 {
			return nil
		}
		cfg := model.DefaultPointsConfig()
		var raw string
		switch err := tx.row(`SELECT value FROM settings WHERE key = ?`, pointsConfigKey).Scan(&raw); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
				log.Error("points: bad stored configuration", "err", err)
				return nil
			}
		}
		if len(cfg.Events) == 0 {
			return nil
		}
		if err := tx.Savepoint(pointsSavepoint); err != nil {
			return err
		}
		if _, err := tx.earnEvents(&cfg, evts); err != nil {
			log.Error("points rules failed on ingested events; the events are stored without their points (the next points run catches up)", "events", len(evts), "err", err)
			return tx.RollbackTo(pointsSavepoint)
		}
		return tx.Release(pointsSavepoint)
	}
}

// EarnEventPoints catches up the points of event rules over the events stored since the last
// run (by event id): events ingested without the hook (imports, a hook failure) or before a
// rule existed (the first run reads every event whose points would not have expired). Events
// already credited are skipped by their key. It returns the entries written.
func (s *Store) EarnEventPoints(ctx context.Context, cfg model.PointsConfig, now time.Time) (int, error) {
	if len(cfg.Events) == 0 {
		return 0, nil
	}
	var mark int64
	if v, ok, err := s.Setting(ctx, pointsEventMarkKey); err != nil {
		return 0, err
	} else if ok {
		mark, _ = strconv.ParseInt(v, 10, 64)
	}
	var since time.Time
	if cfg.ExpiryDays > 0 {
		since = now.Add(-time.Duration(cfg.ExpiryDays) * 24 * time.Hour)
	}
	written := 0
	for {
		// By primary key only, names filtered here: an index on names would make every page
		// re-read and sort all the matching events after the mark.
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, message_id, customer_id, type, name, ts FROM events WHERE id > ? ORDER BY id LIMIT 5000`), mark)
		page, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (*event.Event, error) {
			var e event.Event
			var ts int64
			err := sc.Scan(&e.ID, &e.MessageID, &e.CustomerID, &e.Type, &e.Name, &ts)
			e.Timestamp = fromMS(ts)
			return &e, err
		})
		if err != nil {
			return written, fmt.Errorf("event points: %w", err)
		}
		if len(page) == 0 {
			break
		}
		mark = page[len(page)-1].ID
		evts := slices.DeleteFunc(page, func(e *event.Event) bool {
			_, ok := cfg.EventRule(e.Name)
			return !ok || e.Timestamp.Before(since)
		})
		if len(evts) > 0 {
			err = s.InTx(ctx, func(tx *Tx) error {
				n, err := tx.earnEvents(&cfg, evts)
				written += n
				return err
			})
			if err != nil {
				return written, fmt.Errorf("event points: %w", err)
			}
		}
		if err := s.SetSetting(ctx, pointsEventMarkKey, strconv.FormatInt(mark, 10)); err != nil {
			return written, err
		}
	}
	return written, nil
}

// MergePoints moves the points of customers merged into another (identity resolution found
// them to be one person) to the survivor: an adjust entry on each side (rule "merge"), the
// lots moved with their expiry, so the person keeps every point and its age. Points that
// reach a merged-away customer later (an order stored under its old id) move on the next
// run. It returns the customers moved.
func (s *Store) MergePoints(ctx context.Context) (int, error) {
	type move struct{ from, to, balance, lastEntry int64 }
	moved := 0
	for {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT p.customer_id, c.merged_into, p.balance, (SELECT MAX(id) FROM points_ledger l WHERE l.customer_id = p.customer_id)
			FROM customer_points p JOIN customers c ON c.id = p.customer_id WHERE c.merged_into IS NOT NULL AND p.balance <> 0 ORDER BY p.customer_id LIMIT 500`))
		moves, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (move, error) {
			var m move
			return m, sc.Scan(&m.from, &m.to, &m.balance, &m.lastEntry)
		})
		if err != nil {
			return moved, fmt.Errorf("merge points: %w", err)
		}
		if len(moves) == 0 {
			return moved, nil
		}
		err = s.InTx(ctx, func(tx *Tx) error {
			for _, m := range moves {
				ids := []int64{min(m.from, m.to), max(m.from, m.to)}
				if err := tx.lockPointsMany(ids); err != nil {
					return err
				}
				var bal, to int64
				if err := tx.row(`SELECT balance FROM customer_points WHERE customer_id = ?`, m.from).Scan(&bal); err != nil {
					return err
				}
				if err := tx.row(`SELECT balance FROM customer_points WHERE customer_id = ?`, m.to).Scan(&to); err != nil {
					return err
				}
				if bal == 0 {
					continue // moved by a concurrent run
				}
				key := fmt.Sprintf("merge:%d:%d", m.from, m.lastEntry)
				at := tx.Now()
				for _, side := range []struct {
					customer, delta int64
					ref, key        string
				}{{m.from, -bal, "customer:" + strconv.FormatInt(m.to, 10), key + ":out"}, {m.to, bal, "customer:" + strconv.FormatInt(m.from, 10), key + ":in"}} {
					if _, err := tx.exec(`INSERT INTO points_ledger (customer_id, delta, kind, rule, reason, ref, idem_key, at) VALUES (?, ?, ?, 'merge', '客户合并', ?, ?, ?)`,
						side.customer, side.delta, model.PointsAdjust, side.ref, side.key, ms(at)); err != nil {
						return err
					}
					if _, err := tx.exec(`UPDATE customer_points SET balance = balance + ?, earned = earned + ?, updated_at = ? WHERE customer_id = ?`,
						side.delta, side.delta, ms(at), side.customer); err != nil {
						return err
					}
				}
				if _, err := tx.exec(`UPDATE points_lots SET customer_id = ? WHERE customer_id = ?`, m.to, m.from); err != nil {
					return err
				}
				// A survivor who owed points pays the debt from the lots it received.
				var lots int64
				if err := tx.row(`SELECT COALESCE(SUM(remaining), 0) FROM points_lots WHERE customer_id = ?`, m.to).Scan(&lots); err != nil {
					return err
				}
				if over := lots - max(to+bal, 0); over > 0 {
					if err := tx.consumeLots(m.to, over, 0); err != nil {
						return err
					}
				}
				tx.NoteModel("points", false, m.from, m.to)
				moved++
			}
			return nil
		})
		if err != nil {
			return moved, fmt.Errorf("merge points: %w", err)
		}
	}
}

// PointsRun is what one points run did.
type PointsRun struct {
	OrderEntries  int   `json:"order_entries"`
	EventEntries  int   `json:"event_entries"`
	ExpiredPoints int64 `json:"expired_points"`
	ExpiryEntries int64 `json:"expiry_entries"`
	// MergedCustomers is how many merged-away customers' points moved to their survivors.
	MergedCustomers int `json:"merged_customers"`
}

// RunPoints catches the ledger up with orders and events, then expires the lots due at now.
// Every step is idempotent: a run over unchanged data writes nothing.
func (s *Store) RunPoints(ctx context.Context, cfg model.PointsConfig, now time.Time) (*PointsRun, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var r PointsRun
	var err error
	if r.MergedCustomers, err = s.MergePoints(ctx); err != nil {
		return nil, err
	}
	if r.OrderEntries, err = s.EarnOrderPoints(ctx, cfg, now); err != nil {
		return nil, err
	}
	if r.EventEntries, err = s.EarnEventPoints(ctx, cfg, now); err != nil {
		return nil, err
	}
	if r.ExpiredPoints, r.ExpiryEntries, err = s.ExpirePoints(ctx, now); err != nil {
		return nil, err
	}
	return &r, nil
}
