package csvimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Orders imports orders from CSV, one row per order: an order id, the buyer's identities (an
// unknown buyer becomes a new customer), the paid amount in major units, the payment time, and
// optionally currency, status, refunded amount, refund time, products and quantity. Orders
// that were never paid (待付款, 已取消) are skipped. A known order id is updated when the row
// differs; refunds only grow (a refund cannot be taken back), so importing the same file
// again changes nothing.
func Orders(ctx context.Context, st *store.Store, r io.Reader, opts Options) (*Report, error) {
	rep := &Report{}
	src, err := openSource(r, &opts, rep, orderAliases, false)
	if err != nil {
		return rep, fmt.Errorf("import orders: %w", err)
	}
	for _, need := range []struct{ field, example string }{{fOrderID, "订单号"}, {fAmount, "实付金额"}, {fPaidAt, "支付时间"}} {
		if _, ok := src.headers[need.field]; !ok {
			return rep, fmt.Errorf("import orders: no %s column (e.g. %s), or map one with --map", need.field, need.example)
		}
	}
	source := opts.Source
	if source == "" {
		source = "import"
	}
	err = run(ctx, st, src, &opts, rep, &orderImport{cols: src.cols, source: source})
	if err != nil {
		return rep, fmt.Errorf("import orders: %w", err)
	}
	return rep, nil
}

type orderImport struct {
	cols   []column
	source string
}

type orderRow struct {
	ids        []customer.Identity
	order      event.Order
	refund     int64 // refunded so far, per the file
	refundedAt time.Time
}

func (im *orderImport) parse(rec record) (orderRow, *RowError) {
	var row orderRow
	ids, rerr := identities(im.cols, rec.cells, rec.line)
	if rerr != nil {
		return row, rerr
	}
	row.ids = ids
	get := map[string]struct{ v, header string }{}
	for i, c := range im.cols {
		if !c.ignored && c.field != "" {
			get[c.field] = struct{ v, header string }{cell(rec.cells, i), c.header}
		}
	}
	bad := func(field string, err error) *RowError {
		return &RowError{Line: rec.line, Column: get[field].header, Reason: err.Error()}
	}
	o := &row.order
	o.Source = im.source
	if o.OrderID = get[fOrderID].v; o.OrderID == "" {
		return row, bad(fOrderID, errors.New("an order id is required"))
	} else if len(o.OrderID) > 200 {
		return row, bad(fOrderID, errors.New("longer than 200 bytes"))
	}
	status, paid, err := orderStatus(get[fStatus].v)
	if err != nil {
		return row, bad(fStatus, err)
	}
	if !paid {
		o.Status = "" // marks a skipped row
		return row, nil
	}
	o.Status = status
	if o.Currency, err = normalizeCurrency(get[fCurrency].v); err != nil {
		return row, bad(fCurrency, err)
	}
	if get[fAmount].v == "" {
		return row, bad(fAmount, errors.New("an amount is required"))
	}
	if o.AmountMinor, err = parseMoney(get[fAmount].v, o.Currency); err != nil {
		return row, bad(fAmount, err)
	}
	if get[fPaidAt].v == "" {
		return row, bad(fPaidAt, errors.New("a payment time is required"))
	}
	if o.PaidAt, err = parseTime(get[fPaidAt].v); err != nil {
		return row, bad(fPaidAt, err)
	}
	o.PaidAt = o.PaidAt.Truncate(time.Millisecond)
	if v := get[fRefund].v; v != "" {
		if row.refund, err = parseMoney(v, o.Currency); err != nil {
			return row, bad(fRefund, err)
		}
		if row.refund > o.AmountMinor {
			return row, bad(fRefund, fmt.Errorf("refund %s is more than the amount %s", v, get[fAmount].v))
		}
	} else if status == event.Refunded {
		row.refund = o.AmountMinor
	}
	if v := get[fRefundedAt].v; v != "" {
		if row.refundedAt, err = parseTime(v); err != nil {
			return row, bad(fRefundedAt, err)
		}
	}
	qty := 1.0
	if v := get[fQuantity].v; v != "" {
		if qty, err = strconv.ParseFloat(v, 64); err != nil || qty <= 0 {
			return row, bad(fQuantity, fmt.Errorf("%q is not a positive quantity", v))
		}
	}
	if v := get[fProduct].v; v != "" {
		names := splitProducts(v)
		for _, n := range names {
			p := event.Product{Name: n, Quantity: 1}
			if len(names) == 1 {
				p.Quantity = qty
			}
			o.Products = append(o.Products, p)
		}
	}
	return row, nil
}

// splitProducts splits a products cell on the separators shops use between items.
func splitProducts(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '；' || r == '|' || r == '\n' || r == '、' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (im *orderImport) write(tx *store.Tx, row orderRow, add *Report) (outcome, error) {
	if row.order.Status == "" {
		return skipped, nil
	}
	res, err := tx.Resolve(row.ids, "import")
	if err != nil {
		return 0, err
	}
	if res.Created {
		add.CustomersCreated++
	}
	o := &row.order
	o.CustomerID = res.CustomerID
	refundAt := row.refundedAt
	if refundAt.IsZero() {
		refundAt = o.PaidAt // keep re-imports reproducible: never the clock
	}
	cur, err := tx.OrderByOrderID(o.OrderID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		o.Status, o.RefundedMinor = event.Paid, 0
		if _, err := tx.UpsertOrder(o); err != nil {
			return 0, err
		}
		if row.refund > 0 {
			if err := tx.RefundOrder(event.Refund{OrderID: o.OrderID, AmountMinor: row.refund, At: refundAt}); err != nil {
				return 0, err
			}
		}
		return created, nil
	case err != nil:
		return 0, err
	}
	changed := cur.CustomerID != o.CustomerID || cur.AmountMinor != o.AmountMinor || cur.Currency != o.Currency ||
		cur.PaidAt.UnixMilli() != o.PaidAt.UnixMilli() || !sameProducts(cur.Products, o.Products) || res.Created || len(res.Merged) > 0
	if changed {
		if _, err := tx.UpsertOrder(o); err != nil {
			return 0, err
		}
	}
	if more := row.refund - cur.RefundedMinor; more > 0 {
		if err := tx.RefundOrder(event.Refund{OrderID: o.OrderID, AmountMinor: more, At: refundAt}); err != nil {
			return 0, err
		}
		changed = true
	}
	if changed {
		return updated, nil
	}
	return unchanged, nil
}

func sameProducts(a, b []event.Product) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
