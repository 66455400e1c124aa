package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Bulk loading: the demo generator and large imports write hundreds of thousands of rows, so
// these methods send many rows per statement and skip the per-row checks and lookups of the
// ingestion path. Callers own the consistency of what they load (unique identities and order
// ids, existing customers and staff). Rows are stamped with their own business times, never
// with the clock, so a generated data set is reproducible.

// maxParams bounds the placeholders of one statement: SQLite allows 32766, PostgreSQL 65535.
const maxParams = 32000

// insertRows inserts n rows into table in multi-row statements; row appends the values of
// row i (len(cols) of them) to args.
func (tx *Tx) insertRows(table string, cols []string, n int, row func(i int, args []any) ([]any, error)) error {
	per := min(maxParams/len(cols), 1000)
	head := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `
	args := make([]any, 0, per*len(cols))
	var full *sql.Stmt // the statement for a whole chunk, parsed once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		args = args[:0]
		for i := start; i < end; i++ {
			var err error
			if args, err = row(i, args); err != nil {
				return err
			}
		}
		var err error
		switch {
		case end-start < per:
			_, err = tx.tx.ExecContext(tx.ctx, tx.s.q(head+placeholders(end-start, len(cols))), args...)
		default:
			if full == nil {
				if full, err = tx.tx.PrepareContext(tx.ctx, tx.s.q(head+placeholders(per, len(cols)))); err != nil {
					return fmt.Errorf("bulk insert %s: %w", table, err)
				}
			}
			_, err = full.ExecContext(tx.ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("bulk insert %s: %w", table, err)
		}
	}
	return nil
}

// BulkInsertStaff adds staff members with one password hash for all (may be "": accounts that
// cannot sign in) and sets their IDs. CreatedAt zero means the clock.
func (tx *Tx) BulkInsertStaff(members []*staff.Staff, passwordHash string) error {
	for _, m := range members {
		if err := checkStaff(m); err != nil {
			return fmt.Errorf("staff %s: %w", m.Login, err)
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = tx.Now()
		}
		m.UpdatedAt = m.CreatedAt
		if err := tx.placeDepartment(m); err != nil {
			return fmt.Errorf("staff %s: %w", m.Login, err)
		}
		err := tx.row(`INSERT INTO staff (login, name, email, department, department_id, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			m.Login, m.Name, m.Email, m.Department, nullID(m.DepartmentID), string(m.Role), passwordHash, ms(m.CreatedAt), ms(m.CreatedAt)).Scan(&m.ID)
		if isUniqueViolation(err) {
			return fmt.Errorf("staff %s: %w", m.Login, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("staff %s: %w", m.Login, err)
		}
	}
	return nil
}

// BulkInsertAttrDefs defines attributes; ones already defined keep their definition.
func (tx *Tx) BulkInsertAttrDefs(defs []customer.AttrDef) error {
	for _, d := range defs {
		if !customer.ValidAttrKey(d.Key) || !customer.ValidAttrType(d.Type) {
			return &customer.FieldError{Field: "attrs." + d.Key, Reason: "invalid attribute name or type"}
		}
		label := d.Label
		if label == "" {
			label = d.Key
		}
		if _, err := tx.exec(`INSERT INTO attribute_defs (key, type, label, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			d.Key, string(d.Type), label, ms(d.CreatedAt)); err != nil {
			return fmt.Errorf("define attribute %s: %w", d.Key, err)
		}
	}
	tx.attrDefs = nil
	return nil
}

// BulkInsertCustomers inserts customers with the IDs they carry (IDs must be new; the ID
// sequence is moved past them) and their opt-outs. Attribute values must already be of their
// definitions' types. UpdatedAt zero means CreatedAt.
func (tx *Tx) BulkInsertCustomers(cs []*customer.Customer) error {
	cols := []string{"id", "name", "gender", "birthday", "region", "phone", "email", "avatar_url", "source", "owner_id", "attrs", "created_at", "updated_at", "last_seen_at"}
	err := tx.insertRows("customers", cols, len(cs), func(i int, args []any) ([]any, error) {
		c := cs[i]
		if c.ID <= 0 {
			return nil, fmt.Errorf("bulk insert customer without an id")
		}
		attrs, err := marshalObject(c.Attrs)
		if err != nil {
			return nil, fmt.Errorf("customer %d attrs: %w", c.ID, err)
		}
		var owner any
		if c.OwnerID != 0 {
			owner = c.OwnerID
		}
		updated := c.UpdatedAt
		if updated.IsZero() {
			updated = c.CreatedAt
		}
		return append(args, c.ID, c.Name, c.Gender, c.Birthday, c.Region, c.Phone, c.Email, c.AvatarURL, c.Source, owner, attrs, ms(c.CreatedAt), ms(updated), ms(c.LastSeenAt)), nil
	})
	if err != nil {
		return err
	}
	type optOut struct {
		id int64
		ch string
		at time.Time
	}
	var outs []optOut
	for _, c := range cs {
		for _, ch := range c.OptOuts {
			outs = append(outs, optOut{c.ID, ch, c.CreatedAt})
		}
	}
	err = tx.insertRows("customer_optouts", []string{"customer_id", "channel", "created_at"}, len(outs), func(i int, args []any) ([]any, error) {
		return append(args, outs[i].id, outs[i].ch, ms(outs[i].at)), nil
	})
	if err != nil {
		return err
	}
	for _, c := range cs {
		tx.noteCustomer(c.ID)
	}
	return tx.syncSequence("customers")
}

// syncSequence moves PostgreSQL's id sequence of table past rows inserted with explicit ids
// (SQLite's AUTOINCREMENT follows them by itself).
func (tx *Tx) syncSequence(table string) error {
	if tx.s.engine != Postgres {
		return nil
	}
	_, err := tx.exec(`SELECT setval(pg_get_serial_sequence('` + table + `', 'id'), GREATEST((SELECT MAX(id) FROM ` + table + `), 1))`)
	return err
}

// BulkIdentity is one identity row for BulkInsertIdentities.
type BulkIdentity struct {
	CustomerID int64
	Kind       customer.IdentityKind
	Value      string
	CreatedAt  time.Time
}

// BulkInsertIdentities attaches identities to customers. A value already taken is an error
// (ErrConflict on SQLite's and PostgreSQL's unique index alike).
func (tx *Tx) BulkInsertIdentities(ids []BulkIdentity) error {
	err := tx.insertRows("identities", []string{"kind", "value", "customer_id", "created_at"}, len(ids), func(i int, args []any) ([]any, error) {
		return append(args, string(ids[i].Kind), ids[i].Value, ids[i].CustomerID, ms(ids[i].CreatedAt)), nil
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// BulkInsertEvents stores events whose message ids are new (a duplicate is an error, unlike
// InsertEvents). IDs are assigned in slice order; ReceivedAt zero means Timestamp.
func (tx *Tx) BulkInsertEvents(evts []*event.Event) error {
	cols := []string{"message_id", "customer_id", "type", "name", "properties", "context", "ts", "received_at"}
	for _, e := range evts {
		tx.noteEvent(EventChange{ID: e.ID, CustomerID: e.CustomerID, Name: e.Name, At: e.Timestamp})
	}
	return tx.insertRows("events", cols, len(evts), func(i int, args []any) ([]any, error) {
		e := evts[i]
		props, err := marshalObject(e.Properties)
		if err != nil {
			return nil, fmt.Errorf("event %s properties: %w", e.MessageID, err)
		}
		ctxJSON, err := marshalObject(e.Context)
		if err != nil {
			return nil, fmt.Errorf("event %s context: %w", e.MessageID, err)
		}
		recv := e.ReceivedAt
		if recv.IsZero() {
			recv = e.Timestamp
		}
		return append(args, e.MessageID, e.CustomerID, e.Type, e.Name, props, ctxJSON, ms(e.Timestamp), ms(recv)), nil
	})
}

// BulkInsertOrders stores new orders as they are, refunds included. created_at is the payment
// time and updated_at the refund time, if any.
func (tx *Tx) BulkInsertOrders(orders []*event.Order) error {
	cols := []string{"order_id", "customer_id", "status", "amount_minor", "refunded_minor", "currency", "products", "paid_at", "refunded_at", "source", "created_at", "updated_at"}
	for _, o := range orders {
		tx.noteCustomer(o.CustomerID)
	}
	return tx.insertRows("orders", cols, len(orders), func(i int, args []any) ([]any, error) {
		o := orders[i]
		products := []byte("[]")
		if len(o.Products) > 0 {
			var err error
			if products, err = json.Marshal(o.Products); err != nil {
				return nil, fmt.Errorf("order %s products: %w", o.OrderID, err)
			}
		}
		status := o.Status
		if status == "" {
			status = event.Paid
		}
		var refundedAt any
		updated := ms(o.PaidAt)
		if !o.RefundedAt.IsZero() {
			refundedAt = ms(o.RefundedAt)
			updated = ms(o.RefundedAt)
		}
		return append(args, o.OrderID, o.CustomerID, status, o.AmountMinor, o.RefundedMinor, o.Currency, string(products), ms(o.PaidAt), refundedAt, o.Source, ms(o.PaidAt), updated), nil
	})
}

// OrderByOrderID reads one order inside the transaction (seeing the transaction's own
// writes), or ErrNotFound: importers compare a row with what is stored before writing.
func (tx *Tx) OrderByOrderID(orderID string) (*event.Order, error) {
	o, err := scanOrder(tx.row(`SELECT `+orderCols+` FROM orders WHERE order_id = ?`, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return o, err
}

// CustomerByIdentity finds the customer an identity belongs to inside the transaction (seeing
// its own writes), or ErrNotFound.
func (tx *Tx) CustomerByIdentity(id customer.Identity) (int64, error) {
	var cid int64
	err := tx.row(`SELECT customer_id FROM identities WHERE kind = ? AND value = ?`, string(id.Kind), id.Value).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return cid, err
}

// DropIndexes drops the secondary indexes of tables — not those behind a primary key or a
// unique constraint, which keep loaded data honest, nor those keep (when not nil) says to
// keep — and returns the statements that recreate them. Loading millions of rows into empty
// tables and then building an index whose keys arrive in random order in one sorted pass is
// much faster than updating it row by row; an index whose keys arrive in order (customer id
// for rows loaded customer by customer) is cheap to keep. Put them back with CreateIndexes, in
// the same or a later transaction.
func (tx *Tx) DropIndexes(keep func(index string) bool, tables ...string) ([]string, error) {
	var names, defs []string
	for _, table := range tables {
		var q string
		if tx.s.engine == Postgres {
			q = `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?
				AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = indexname) ORDER BY indexname`
		} else {
			q = `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`
		}
		rows, err := tx.query(q, table)
		if err != nil {
			return nil, fmt.Errorf("indexes of %s: %w", table, err)
		}
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				rows.Close()
				return nil, err
			}
			if keep == nil || !keep(name) {
				names, defs = append(names, name), append(defs, def)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if _, err := tx.exec(`DROP INDEX ` + name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

// CreateIndexes runs index definitions returned by DropIndexes.
func (tx *Tx) CreateIndexes(defs []string) error {
	for _, d := range defs {
		if _, err := tx.exec(d); err != nil {
			return fmt.Errorf("recreate index: %w", err)
		}
	}
	return nil
}
