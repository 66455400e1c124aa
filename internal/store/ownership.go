package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
)

// Customer ownership (internal/ownership): the owner history, the customer pool (公海) and
// staff transfers (离职继承 / 在职继承) moved item by item, each item exactly once.

// Reasons an owner changes, recorded in the owner history.
const (
	OwnerManual      = "manual"       // one customer assigned by hand
	OwnerBulk        = "bulk"         // a list or a segment assigned to one staff member
	OwnerRule        = "rule"         // distributed by a round-robin rule
	OwnerClaim       = "claim"        // a sales person claimed the customer from the pool
	OwnerRelease     = "release"      // released back to the pool
	OwnerAutoRelease = "auto_release" // not followed up for N days: back to the pool
	OwnerTransfer    = "transfer"     // moved by a staff transfer (离职继承 / 在职继承)
	OwnerProfile     = "profile"      // set with the profile: API, import, ingestion, WeCom
)

// OwnerChangedEvent is the event every change of owner records on the customer, so that SOPs
// and tag rules can react to it. Its properties: from_owner_id, to_owner_id (0: the pool),
// reason, by_staff_id.
const OwnerChangedEvent = "Owner Changed"

// OwnerChange is one change of a customer's owner. FromID and ToID are 0 for the pool.
type OwnerChange struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	FromID     int64     `json:"from_id"`
	ToID       int64     `json:"to_id"`
	ByStaff    int64     `json:"by_staff_id"`
	Reason     string    `json:"reason"`
	Note       string    `json:"note"`
	Ref        string    `json:"ref"`
	At         time.Time `json:"at"`
}

// SetOwners changes the owner of each customer of changes to its ToID, in tx, when the
// customer is live and currently owned by expect[i] (-1: whoever owns it); FromID is filled
// from the row. Every change is written to the owner history and records an "Owner Changed"
// event. It reports, per change, whether it was applied: a customer that already has the new
// owner, has another owner than expected (someone was faster) or is gone is left alone.
// The compare-and-set on the row makes two concurrent writers change a customer once.
func (tx *Tx) SetOwners(changes []OwnerChange, expect []int64) ([]bool, error) {
	applied := make([]bool, len(changes))
	now := tx.Now()
	var done []*OwnerChange
	for i := range changes {
		c := &changes[i]
		var cur, merged sql.NullInt64
		err := tx.row(`SELECT owner_id, merged_into FROM customers WHERE id = ?`, c.CustomerID).Scan(&cur, &merged)
		if errors.Is(err, sql.ErrNoRows) || merged.Valid {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("owner of customer %d: %w", c.CustomerID, err)
		}
		c.FromID = cur.Int64
		if (expect != nil && expect[i] >= 0 && c.FromID != expect[i]) || c.FromID == c.ToID {
			continue
		}
		res, err := tx.exec(`UPDATE customers SET owner_id = ?, updated_at = ? WHERE id = ? AND COALESCE(owner_id, 0) = ? AND merged_into IS NULL`,
			nullID(c.ToID), ms(now), c.CustomerID, c.FromID)
		if err != nil {
			return nil, fmt.Errorf("set owner of customer %d: %w", c.CustomerID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // changed by another writer between the read and the update
		}
		applied[i] = true
		tx.noteCustomer(c.CustomerID)
		done = append(done, c)
	}
	return applied, tx.recordOwnerChanges(done)
}

// recordOwnerChanges writes changes of owner already made to the owner history, each with
// an "Owner Changed" event (one multi-row insert for the events) handed to the event hook —
// except a customer's first owner set with its profile (a new WeCom contact, an imported row),
// which is how the customer arrived rather than a change.
func (tx *Tx) recordOwnerChanges(changes []*OwnerChange) error {
	if len(changes) == 0 {
		return nil
	}
	now := tx.Now()
	evts := make([]*event.Event, 0, len(changes))
	for _, c := range changes {
		c.At = now
		if err := tx.row(`INSERT INTO owner_history (customer_id, from_id, to_id, by_staff, reason, note, ref, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.CustomerID, nullID(c.FromID), nullID(c.ToID), nullID(c.ByStaff), c.Reason, c.Note, c.Ref, ms(now)).Scan(&c.ID); err != nil {
			return fmt.Errorf("owner history of customer %d: %w", c.CustomerID, err)
		}
		if c.Reason == OwnerProfile && c.FromID == 0 {
			continue // a first owner set with the profile (a new WeCom contact, an import): history only
		}
		evts = append(evts, &event.Event{
			MessageID:  "owner:" + strconv.FormatInt(c.ID, 10),
			CustomerID: c.CustomerID, Type: "track", Name: OwnerChangedEvent, Timestamp: now,
			Properties: map[string]any{"from_owner_id": c.FromID, "to_owner_id": c.ToID, "reason": c.Reason, "by_staff_id": c.ByStaff},
		})
	}
	if len(evts) == 0 {
		return nil
	}
	inserted, err := tx.InsertEvents(evts)
	if err != nil {
		return err
	}
	// Event tag rules and event-triggered SOPs see the change in this transaction, as they see
	// ingested events and model runs' events (the OnModelEvents hook).
	return tx.modelEventsStored(evts, inserted)
}

// SetOwners applies changes in one transaction (see Tx.SetOwners).
func (s *Store) SetOwners(ctx context.Context, changes []OwnerChange, expect []int64) (applied []bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		applied, err = tx.SetOwners(changes, expect)
		return err
	})
	return applied, err
}

func scanOwnerChange(sc interface{ Scan(...any) error }) (OwnerChange, error) {
	var (
		c            OwnerChange
		from, to, by sql.NullInt64
		at           int64
	)
	err := sc.Scan(&c.ID, &c.CustomerID, &from, &to, &by, &c.Reason, &c.Note, &c.Ref, &at)
	c.FromID, c.ToID, c.ByStaff, c.At = from.Int64, to.Int64, by.Int64, fromMS(at)
	return c, err
}

// OwnerHistory lists a customer's changes of owner, newest first, at most limit (0: all).
func (s *Store) OwnerHistory(ctx context.Context, customerID int64, limit int) ([]OwnerChange, error) {
	q := `SELECT id, customer_id, from_id, to_id, by_staff, reason, note, ref, at FROM owner_history WHERE customer_id = ? ORDER BY id DESC`
	args := []any{customerID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	return collect(rows, err, scanOwnerChange)
}

// ExistingStaff returns which of ids are staff accounts that can own customers (not
// disabled), as a set.
func (s *Store) ExistingStaff(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for _, id := range ids {
		var disabled sql.NullInt64
		err := s.db.QueryRowContext(ctx, s.q(`SELECT disabled_at FROM staff WHERE id = ?`), id).Scan(&disabled)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !disabled.Valid {
			out[id] = true
		}
	}
	return out, nil
}

// OwnedCounts counts the live customers each of staff owns.
func (s *Store) OwnedCounts(ctx context.Context, staff []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	for _, id := range staff {
		var n int64
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM customers WHERE owner_id = ? AND merged_into IS NULL`), id).Scan(&n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, nil
}

// OwnedCustomerIDs lists the live customers a staff member owns, by id.
func (s *Store) OwnedCustomerIDs(ctx context.Context, staffID int64) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM customers WHERE owner_id = ? AND merged_into IS NULL ORDER BY id`), staffID)
	return collect(rows, err, scanID)
}

// CustomerOwners returns the owner (0: none) of each live customer of ids; customers that do
// not exist, were merged away or erased are missing from the map.
func (s *Store) CustomerOwners(ctx context.Context, ids []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, COALESCE(owner_id, 0) FROM customers WHERE merged_into IS NULL AND id IN `+placeholders(1, len(part))), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, owner int64
			if err := rows.Scan(&id, &owner); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = owner
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ClaimLimits bound what one sales person may take from the pool; 0 means no limit.
type ClaimLimits struct {
	PerDay   int       // claims per day
	MaxOwned int       // customers owned in all
	DayStart time.Time // the start of today in the workspace time zone
}

// ClaimLimitError refuses a claim that would go over a limit; Field names the limit.
type ClaimLimitError struct {
	Field string // "daily_claim_limit" or "max_owned"
	Limit int
	Have  int64
	Asked int
}

func (e *ClaimLimitError) Error() string {
	if e.Field == "daily_claim_limit" {
		return fmt.Sprintf("daily claim limit %d: %d claimed today, %d asked", e.Limit, e.Have, e.Asked)
	}
	return fmt.Sprintf("at most %d customers owned: %d owned, %d asked", e.Limit, e.Have, e.Asked)
}

// Claim gives the unowned customers of ids to staffID (a claim from the pool), in one
// transaction: all or nothing for the limits (a claim that would exceed one is refused with a
// *ClaimLimitError and writes nothing), customer by customer for races — a customer another
// claimant took first is returned in taken, never claimed twice. Concurrent claims of one
// staff member are serialised (PostgreSQL: a lock on the staff row; SQLite: the write lock),
// so the limits hold under concurrency too.
func (s *Store) Claim(ctx context.Context, staffID int64, ids []int64, lim ClaimLimits, note string) (claimed, taken []int64, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		claimed, taken = nil, nil
		lock := ""
		if s.engine == Postgres {
			lock = " FOR UPDATE"
		}
		var one int
		if err := tx.row(`SELECT 1 FROM staff WHERE id = ? AND disabled_at IS NULL`+lock, staffID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if lim.PerDay > 0 {
			var n int64
			if err := tx.row(`SELECT COUNT(*) FROM owner_history WHERE to_id = ? AND reason = ? AND at >= ?`, staffID, OwnerClaim, ms(lim.DayStart)).Scan(&n); err != nil {
				return err
			}
			if n+int64(len(ids)) > int64(lim.PerDay) {
				return &ClaimLimitError{Field: "daily_claim_limit", Limit: lim.PerDay, Have: n, Asked: len(ids)}
			}
		}
		if lim.MaxOwned > 0 {
			var n int64
			if err := tx.row(`SELECT COUNT(*) FROM customers WHERE owner_id = ? AND merged_into IS NULL`, staffID).Scan(&n); err != nil {
				return err
			}
			if n+int64(len(ids)) > int64(lim.MaxOwned) {
				return &ClaimLimitError{Field: "max_owned", Limit: lim.MaxOwned, Have: n, Asked: len(ids)}
			}
		}
		changes := make([]OwnerChange, len(ids))
		expect := make([]int64, len(ids))
		for i, id := range ids {
			changes[i] = OwnerChange{CustomerID: id, ToID: staffID, ByStaff: staffID, Reason: OwnerClaim, Note: note}
		}
		applied, err := tx.SetOwners(changes, expect)
		if err != nil {
			return err
		}
		for i, ok := range applied {
			if ok {
				claimed = append(claimed, ids[i])
			} else {
				taken = append(taken, ids[i])
			}
		}
		return nil
	})
	return claimed, taken, err
}

// ClaimsSince counts a staff member's claims from the pool since t.
func (s *Store) ClaimsSince(ctx context.Context, staffID int64, t time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM owner_history WHERE to_id = ? AND reason = ? AND at >= ?`), staffID, OwnerClaim, ms(t)).Scan(&n)
	return n, err
}

// PoolEntry is a customer of the pool with when it came there and from whom.
type PoolEntry struct {
	CustomerID int64
	PooledAt   time.Time // zero: never owned
	LastOwner  int64
}

// PoolEntries returns when each of ids last came to the pool and from whom (its newest
// owner history row, when that row is a move to the pool).
func (s *Store) PoolEntries(ctx context.Context, ids []int64) (map[int64]PoolEntry, error) {
	out := map[int64]PoolEntry{}
	for _, id := range ids {
		var (
			from, to sql.NullInt64
			at       int64
		)
		err := s.db.QueryRowContext(ctx, s.q(`SELECT from_id, to_id, at FROM owner_history WHERE customer_id = ? ORDER BY id DESC LIMIT 1`), id).Scan(&from, &to, &at)
		if errors.Is(err, sql.ErrNoRows) {
			out[id] = PoolEntry{CustomerID: id}
			continue
		}
		if err != nil {
			return nil, err
		}
		e := PoolEntry{CustomerID: id}
		if !to.Valid {
			e.PooledAt, e.LastOwner = fromMS(at), from.Int64
		}
		out[id] = e
	}
	return out, nil
}

// StaleOwned lists up to limit owned customers with id above after that nobody followed up
// since cutoff: their current owner got them before cutoff and since then has finished no
// task of theirs and changed none of their tags. It is what the pool's auto-release reads.
func (s *Store) StaleOwned(ctx context.Context, cutoff time.Time, after int64, limit int) (ids, owners []int64, err error) {
	c := ms(cutoff)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT c.id, c.owner_id FROM customers c
		WHERE c.id > ? AND c.owner_id IS NOT NULL AND c.merged_into IS NULL
		AND COALESCE((SELECT MAX(h.at) FROM owner_history h WHERE h.customer_id = c.id), c.created_at) < ?
		AND NOT EXISTS (SELECT 1 FROM touches t WHERE t.customer_id = c.id AND t.executor_id = c.owner_id AND t.state = 'done' AND t.finished_at >= ?)
		AND NOT EXISTS (SELECT 1 FROM tag_history g WHERE g.customer_id = c.id AND g.by_staff = c.owner_id AND g.at >= ?)
		ORDER BY c.id LIMIT ?`), after, c, c, c, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, owner int64
		if err := rows.Scan(&id, &owner); err != nil {
			return nil, nil, err
		}
		ids, owners = append(ids, id), append(owners, owner)
	}
	return ids, owners, rows.Err()
}

// Transfer kinds.
const (
	TransferResigned = "resigned" // 离职继承: everything of a staff member who leaves
	TransferHandover = "handover" // 在职继承: chosen customers of a staff member who stays
	TransferAssign   = "assign"   // a large bulk assignment run in batches
)

// Transfer states.
const (
	TransferQueued  = "queued"  // waiting for the scheduler
	TransferRunning = "running" // moving items batch by batch
	TransferWaiting = "waiting" // items wait for WeCom (the customer's consent window)
	TransferDone    = "done"
	TransferFailed  = "failed"
)

// Transfer item kinds and states.
const (
	ItemCustomer = "customer"
	ItemTask     = "task"
	ItemGroup    = "group"

	ItemPending    = "pending"    // not handled yet
	ItemFollows    = "follows"    // a task that moves with its customer, when the customer moves
	ItemSubmitting = "submitting" // being sent to WeCom (a crash here is resolved by asking WeCom)
	ItemWaiting    = "waiting"    // accepted by WeCom, the customer's consent window runs
	ItemMoved      = "moved"      // moved in siyu: done
	ItemRefused    = "refused"    // the customer refused or WeCom refused: the old owner stays
	ItemFailed     = "failed"     // could not be moved (detail says why)
	ItemSkipped    = "skipped"    // nothing to move any more (owner changed meanwhile, task closed)
)

// Transfer is one staff transfer or large assignment, with its items' counts.
type Transfer struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	FromStaff int64           `json:"from_staff_id,omitempty"`
	Spec      json.RawMessage `json:"spec"`
	State     string          `json:"state"`
	ViaWeCom  bool            `json:"via_wecom"`
	Note      string          `json:"note"`
	Error     string          `json:"error,omitempty"`
	CreatedBy int64           `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// FinishedAt is when the last item was settled.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Counts is items by kind and state.
	Counts map[string]map[string]int64 `json:"counts"`
}

// TransferItem is one thing a transfer moves: a customer, an open task or a group chat.
type TransferItem struct {
	TransferID int64  `json:"transfer_id"`
	Kind       string `json:"kind"`
	ItemID     int64  `json:"item_id"`           // customer or touch id; 0 for a group
	ChatID     string `json:"chat_id,omitempty"` // group chats
	CustomerID int64  `json:"customer_id"`       // the customer (of a task: its customer)
	FromStaff  int64  `json:"from_staff_id"`     // the owner or executor expected when moving
	ToStaff    int64  `json:"to_staff_id"`
	State      string `json:"state"`
	Detail     string `json:"detail,omitempty"`
	// ExternalUserID is the customer's WeCom external_userid (read with the item, not stored).
	ExternalUserID string    `json:"-"`
	SubmittedAt    time.Time `json:"submitted_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at"`
}

const transferCols = `id, kind, COALESCE(from_staff, 0), spec, state, via_wecom, note, error, COALESCE(created_by, 0), created_at, updated_at, finished_at`

func scanTransfer(sc interface{ Scan(...any) error }) (*Transfer, error) {
	var (
		t                Transfer
		spec             string
		via              int64
		created, updated int64
		finished         sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Kind, &t.FromStaff, &spec, &t.State, &via, &t.Note, &t.Error, &t.CreatedBy, &created, &updated, &finished); err != nil {
		return nil, err
	}
	t.Spec, t.ViaWeCom = json.RawMessage(spec), via != 0
	t.CreatedAt, t.UpdatedAt, t.FinishedAt = fromMS(created), fromMS(updated), nullMS(finished)
	return &t, nil
}

// CreateTransfer stores a transfer with its items and enqueues job (its key made from the
// transfer's id by key) in one transaction, and returns the transfer's id.
func (s *Store) CreateTransfer(ctx context.Context, t *Transfer, items []TransferItem, job *Job, key func(id int64) string) (int64, error) {
	var id int64
	err := s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.Now())
		spec := string(t.Spec)
		if spec == "" {
			spec = "{}"
		}
		if err := tx.row(`INSERT INTO transfers (kind, from_staff, spec, state, via_wecom, note, error, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?) RETURNING id`,
			t.Kind, nullID(t.FromStaff), spec, TransferQueued, boolInt(t.ViaWeCom), t.Note, nullID(t.CreatedBy), now, now).Scan(&id); err != nil {
			return fmt.Errorf("create transfer: %w", err)
		}
		if err := tx.addTransferItems(id, items); err != nil {
			return err
		}
		j := *job
		j.Key = key(id)
		j.Payload = json.RawMessage(`{"transfer_id":` + strconv.FormatInt(id, 10) + `}`)
		_, err := tx.EnqueueJob(&j)
		return err
	})
	return id, err
}

func (tx *Tx) addTransferItems(id int64, items []TransferItem) error {
	now := ms(tx.Now())
	return tx.insertRows("transfer_items", []string{"transfer_id", "kind", "item_id", "chat_id", "customer_id", "from_staff", "to_staff", "state", "detail", "updated_at"}, len(items),
		func(i int, args []any) ([]any, error) {
			it := items[i]
			state := it.State
			if state == "" {
				state = ItemPending
			}
			return append(args, id, it.Kind, it.ItemID, it.ChatID, it.CustomerID, it.FromStaff, it.ToStaff, state, "", now), nil
		})
}

// AddTransferItems adds items to a transfer that it does not hold yet (by kind, item and
// chat) and returns how many it added: a resigned staff member's customers that came after
// the transfer started are swept up this way.
func (s *Store) AddTransferItems(ctx context.Context, id int64, items []TransferItem) (int, error) {
	added := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		added = 0
		now := ms(tx.Now())
		for _, it := range items {
			res, err := tx.exec(`INSERT INTO transfer_items (transfer_id, kind, item_id, chat_id, customer_id, from_staff, to_staff, state, detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?) ON CONFLICT DO NOTHING`,
				id, it.Kind, it.ItemID, it.ChatID, it.CustomerID, it.FromStaff, it.ToStaff, ItemPending, now)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				added++
			}
		}
		return nil
	})
	return added, err
}

// Transfer returns one transfer with its counts.
func (s *Store) Transfer(ctx context.Context, id int64) (*Transfer, error) {
	t, err := scanTransfer(s.db.QueryRowContext(ctx, s.q(`SELECT `+transferCols+` FROM transfers WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return t, s.fillTransferCounts(ctx, []*Transfer{t})
}

// Transfers lists transfers, newest first, at most limit, older than before (0: all).
func (s *Store) Transfers(ctx context.Context, before int64, limit int) ([]*Transfer, error) {
	q := `SELECT ` + transferCols + ` FROM transfers`
	args := []any{}
	if before > 0 {
		q += ` WHERE id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	ts, err := collect(rows, err, scanTransfer)
	if err != nil {
		return nil, err
	}
	return ts, s.fillTransferCounts(ctx, ts)
}

func (s *Store) fillTransferCounts(ctx context.Context, ts []*Transfer) error {
	for _, t := range ts {
		t.Counts = map[string]map[string]int64{}
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT kind, state, COUNT(*) FROM transfer_items WHERE transfer_id = ? GROUP BY kind, state`), t.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var kind, state string
			var n int64
			if err := rows.Scan(&kind, &state, &n); err != nil {
				rows.Close()
				return err
			}
			if t.Counts[kind] == nil {
				t.Counts[kind] = map[string]int64{}
			}
			t.Counts[kind][state] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// SetTransferState changes a transfer's state (and error); done and failed stamp finished_at.
func (s *Store) SetTransferState(ctx context.Context, id int64, state, why string) error {
	now := ms(s.now())
	var finished any
	if state == TransferDone || state == TransferFailed {
		finished = now
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE transfers SET state = ?, error = ?, updated_at = ?, finished_at = COALESCE(?, finished_at) WHERE id = ?`), state, why, now, finished, id)
	return err
}

// TransferItems lists a transfer's items of one kind in one state (both optional), by item,
// at most limit; customer items carry their WeCom external_userid when they have one.
func (s *Store) TransferItems(ctx context.Context, id int64, kind, state string, limit int) ([]TransferItem, error) {
	q := `SELECT i.transfer_id, i.kind, i.item_id, i.chat_id, i.customer_id, i.from_staff, i.to_staff, i.state, i.detail, i.submitted_at, i.updated_at,
		COALESCE((SELECT MIN(d.value) FROM identities d WHERE d.customer_id = i.customer_id AND d.kind = 'wecom_external' AND i.kind = 'customer'), '')
		FROM transfer_items i WHERE i.transfer_id = ?`
	args := []any{id}
	if kind != "" {
		q += ` AND i.kind = ?`
		args = append(args, kind)
	}
	if state != "" {
		q += ` AND i.state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY i.kind, i.item_id, i.chat_id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (TransferItem, error) {
		var (
			it        TransferItem
			submitted sql.NullInt64
			updated   int64
		)
		err := sc.Scan(&it.TransferID, &it.Kind, &it.ItemID, &it.ChatID, &it.CustomerID, &it.FromStaff, &it.ToStaff, &it.State, &it.Detail, &submitted, &updated, &it.ExternalUserID)
		it.SubmittedAt, it.UpdatedAt = nullMS(submitted), fromMS(updated)
		return it, err
	})
}

// ItemOutcome settles one transfer item: from state From to State, with Detail. Settling an
// item to ItemMoved moves the thing in the same transaction: a customer's owner (with its
// history and event), a task's executor, a group chat's owner.
type ItemOutcome struct {
	Item   TransferItem
	From   string
	State  string
	Detail string
	// Submitted stamps submitted_at (the WeCom consent window starts then).
	Submitted time.Time
}

// SettleTransferItems applies outcomes to a transfer's items in one transaction: each item
// changes only when it is still in its From state, so settling twice (a resumed batch, a
// second poll) changes nothing the second time. A customer moved takes its tasks that are
// items of the same transfer with it, and a customer that stays keeps them (skipped). When
// the thing has changed meanwhile (another owner, a closed task, a group with a new owner) the
// item is skipped, saying so. It returns how many items changed state.
func (s *Store) SettleTransferItems(ctx context.Context, t *Transfer, outs []ItemOutcome) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		n = 0
		var moving, settled []TransferItem // customers to move; customers settled otherwise
		var settledAs []string
		for _, o := range outs {
			it, state := o.Item, o.State
			ok, err := tx.setItem(it, o.From, state, o.Detail, o.Submitted)
			if err != nil {
				return err
			}
			if !ok {
				continue // settled before (a resumed batch, a second poll)
			}
			n++
			switch {
			case it.Kind == ItemCustomer && state == ItemMoved:
				moving = append(moving, it)
			case it.Kind == ItemCustomer && (state == ItemRefused || state == ItemFailed || state == ItemSkipped):
				settled, settledAs = append(settled, it), append(settledAs, state)
			case state == ItemMoved:
				moved, detail, err := tx.moveItem(t, it)
				if err != nil {
					return err
				}
				if moved != ItemMoved {
					if _, err := tx.setItem(it, ItemMoved, moved, detail, time.Time{}); err != nil {
						return err
					}
				}
			}
		}
		// The customers move together: one owner change each, their events in one insert.
		if len(moving) > 0 {
			reason := OwnerTransfer
			if t.Kind == TransferAssign {
				reason = OwnerRule
			}
			changes := make([]OwnerChange, len(moving))
			expect := make([]int64, len(moving))
			ref := "transfer:" + strconv.FormatInt(t.ID, 10)
			for i, it := range moving {
				changes[i] = OwnerChange{CustomerID: it.CustomerID, ToID: it.ToStaff, ByStaff: t.CreatedBy, Reason: reason, Note: t.Note, Ref: ref}
				expect[i] = it.FromStaff
			}
			applied, err := tx.SetOwners(changes, expect)
			if err != nil {
				return err
			}
			for i, it := range moving {
				state := ItemMoved
				if !applied[i] {
					state = ItemSkipped
					if _, err := tx.setItem(it, ItemMoved, state, "the customer's owner changed meanwhile (or the customer is gone)", time.Time{}); err != nil {
						return err
					}
				}
				settled, settledAs = append(settled, it), append(settledAs, state)
			}
		}
		return tx.settleCustomerTasks(t, settled, settledAs)
	})
	return n, err
}

func (tx *Tx) setItem(it TransferItem, from, state, detail string, submitted time.Time) (bool, error) {
	var sub any
	if !submitted.IsZero() {
		sub = ms(submitted)
	}
	res, err := tx.exec(`UPDATE transfer_items SET state = ?, detail = ?, submitted_at = COALESCE(?, submitted_at), updated_at = ?
		WHERE transfer_id = ? AND kind = ? AND item_id = ? AND chat_id = ? AND state = ?`,
		state, detail, sub, ms(tx.Now()), it.TransferID, it.Kind, it.ItemID, it.ChatID, from)
	if err != nil {
		return false, fmt.Errorf("settle transfer item %s %d%s: %w", it.Kind, it.ItemID, it.ChatID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// moveItem moves one task or group chat and says the state its item ends in (customers move
// together, in SettleTransferItems).
func (tx *Tx) moveItem(t *Transfer, it TransferItem) (state, detail string, err error) {
	now := ms(tx.Now())
	switch it.Kind {
	case ItemTask:
		res, err := tx.exec(`UPDATE touches SET executor_id = ?, updated_at = ? WHERE id = ? AND executor_id = ? AND state IN ('planned', 'due')`, it.ToStaff, now, it.ItemID, it.FromStaff)
		if err != nil {
			return "", "", fmt.Errorf("move task %d: %w", it.ItemID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ItemSkipped, "the task was closed or reassigned meanwhile", nil
		}
		return ItemMoved, "", nil
	case ItemGroup:
		from, to := "", ""
		if err := tx.row(`SELECT wecom_userid FROM wecom_staff WHERE staff_id = ?`, it.FromStaff).Scan(&from); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", "", err
		}
		if err := tx.row(`SELECT wecom_userid FROM wecom_staff WHERE staff_id = ?`, it.ToStaff).Scan(&to); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", "", err
		}
		if to == "" {
			return ItemFailed, "the successor has no WeCom userid", nil
		}
		res, err := tx.exec(`UPDATE wecom_group_chats SET owner_userid = ?, updated_at = ? WHERE chat_id = ? AND owner_userid = ?`, to, now, it.ChatID, from)
		if err != nil {
			return "", "", fmt.Errorf("move group chat %s: %w", it.ChatID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ItemSkipped, "the group chat's owner changed meanwhile", nil
		}
		return ItemMoved, "", nil
	}
	return "", "", fmt.Errorf("transfer item of unknown kind %q", it.Kind)
}

// settleCustomerTasks moves the task items that follow customers settled in this transaction
// to each customer's successor when the customer moved, and leaves them (skipped) when the
// customer stayed. It reads the tasks of all the customers in one query.
func (tx *Tx) settleCustomerTasks(t *Transfer, customers []TransferItem, states []string) error {
	if len(customers) == 0 {
		return nil
	}
	byCustomer := map[int64]int{}
	args := []any{t.ID, ItemTask, ItemFollows}
	for i, c := range customers {
		byCustomer[c.CustomerID] = i
		args = append(args, c.CustomerID)
	}
	rows, err := tx.query(`SELECT item_id, customer_id, from_staff FROM transfer_items WHERE transfer_id = ? AND kind = ? AND state = ? AND customer_id IN `+placeholders(1, len(customers)), args...)
	tasks, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (TransferItem, error) {
		it := TransferItem{TransferID: t.ID, Kind: ItemTask}
		return it, sc.Scan(&it.ItemID, &it.CustomerID, &it.FromStaff)
	})
	if err != nil {
		return err
	}
	for _, task := range tasks {
		i := byCustomer[task.CustomerID]
		st, detail := ItemSkipped, "the customer stayed with their owner"
		if states[i] == ItemMoved {
			task.ToStaff = customers[i].ToStaff
			if st, detail, err = tx.moveItem(t, task); err != nil {
				return err
			}
		}
		if _, err := tx.setItem(task, ItemFollows, st, detail, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// OpenTasks lists the open tasks (planned or due touches) a staff member executes: touch id
// and customer id.
func (s *Store) OpenTasks(ctx context.Context, staffID int64) (ids, customers []int64, err error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, customer_id FROM touches WHERE executor_id = ? AND state IN ('planned', 'due') ORDER BY id`), staffID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, c int64
		if err := rows.Scan(&id, &c); err != nil {
			return nil, nil, err
		}
		ids, customers = append(ids, id), append(customers, c)
	}
	return ids, customers, rows.Err()
}

// OwnedGroupChats lists the live group chats whose owner is the WeCom userid.
func (s *Store) OwnedGroupChats(ctx context.Context, userID string) ([]string, error) {
	if userID == "" {
		return []string{}, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT chat_id FROM wecom_group_chats WHERE owner_userid = ? AND status <> 'dismissed' ORDER BY chat_id`), userID)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, sc.Scan(&id)
	})
}

// WeComUserIDOf returns a staff member's WeCom userid, "" when they have none.
func (s *Store) WeComUserIDOf(ctx context.Context, staffID int64) (string, error) {
	var u string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT wecom_userid FROM wecom_staff WHERE staff_id = ?`), staffID).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return u, err
}
