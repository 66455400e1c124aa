package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestConsolePool shows the pool with masked phones and lets a sales person claim: the
// flash says how many, a customer a colleague took first is reported, content staff may
// not open the page.
func TestConsolePool(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newConsoleEnv(t, st)
	sales := consoleSignIn(t, st, "sam", staff.Sales)
	writer := consoleSignIn(t, st, "cora", staff.Content)
	var ids []int64
	err := st.InTx(context.Background(), func(tx *store.Tx) error {
		for i := 0; i < 3; i++ {
			id, err := tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: fmt.Sprint("u", i)}}, st.Now())
			if err != nil {
				return err
			}
			name, phone := fmt.Sprint("公海客户", i), fmt.Sprint("1390000567", i)
			if err := tx.ApplyPatch(id, &customer.Patch{Name: &name, Phone: &phone}); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	page := e.get(sales, "/pool")
	page.want(t, http.StatusOK, "公海客户0", "139****5670", "今日已领取 0 位")
	page.lacks(t, "13900005670")
	r := e.post(sales, "/pool/claim", url.Values{"customer": {fmt.Sprint(ids[0]), fmt.Sprint(ids[1])}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("claim: %d", r.StatusCode)
	}
	if c, _ := st.Customer(context.Background(), ids[0]); c.OwnerID != sales.Staff.ID {
		t.Fatal("not claimed")
	}
	e.get(sales, "/pool", r.cookie(flashCookie)).want(t, http.StatusOK, "已领取 2 位客户", "今日已领取 2 位", "公海客户2")
	r = e.post(sales, "/pool/claim", url.Values{"customer": {fmt.Sprint(ids[0]), fmt.Sprint(ids[2])}})
	e.get(sales, "/pool", r.cookie(flashCookie)).want(t, http.StatusOK, "已领取 1 位客户；另有 1 位已被其他同事抢先领取")
	e.get(writer, "/pool").want(t, http.StatusForbidden)
	if r := e.post(sales, "/pool/claim", url.Values{"customer": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad id: %d", r.StatusCode)
	}
}
