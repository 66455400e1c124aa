package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/scheduler"
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

// TestConsoleTransfers starts a 离职继承 from the console, shows its progress once the
// scheduler ran it, re-shows the form naming the problem on bad input, and keeps sales out.
func TestConsoleTransfers(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newConsoleEnv(t, st)
	op := consoleSignIn(t, st, "olivia", staff.Operator)
	sales := consoleSignIn(t, st, "sam", staff.Sales)
	leaver := consoleSignIn(t, st, "leo", staff.Sales)
	err := st.InTx(context.Background(), func(tx *store.Tx) error {
		for i := 0; i < 3; i++ {
			id, err := tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: fmt.Sprint("t", i)}}, st.Now())
			if err != nil {
				return err
			}
			owner := "leo"
			if err := tx.ApplyPatch(id, &customer.Patch{Owner: &owner}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.get(op, "/transfers").want(t, http.StatusOK, "发起客户继承", "离职继承")
	e.get(sales, "/transfers").want(t, http.StatusForbidden)
	e.post(op, "/transfers", url.Values{"kind": {"resigned"}, "from": {fmt.Sprint(leaver.Staff.ID)}}).want(t, http.StatusUnprocessableEntity, "successors")
	e.post(op, "/transfers", url.Values{"kind": {"handover"}, "from": {fmt.Sprint(leaver.Staff.ID)}, "successor": {fmt.Sprint(sales.Staff.ID)}, "customers": {"1, x"}}).
		want(t, http.StatusUnprocessableEntity, "「x」不是客户 ID")
	r := e.post(op, "/transfers", url.Values{"kind": {"resigned"}, "from": {fmt.Sprint(leaver.Staff.ID)}, "successor": {fmt.Sprint(sales.Staff.ID)}, "note": {"离职"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/transfers/1" {
		t.Fatalf("start: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	e.get(op, "/transfers/1", r.cookie(flashCookie)).want(t, http.StatusOK, "已开始转移", "排队中")
	sch := scheduler.New(st, "test", nil)
	ownership.New(st, nil).Register(sch)
	if _, err := sch.RunDue(context.Background(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	e.get(op, "/transfers/1").want(t, http.StatusOK, "已完成", "已转移")
	e.get(op, "/transfers").want(t, http.StatusOK, "已转 3 · 待确认 0 · 拒绝 0")
	e.get(op, "/transfers/99").want(t, http.StatusNotFound)
	if owned, _ := st.OwnedCounts(context.Background(), []int64{sales.Staff.ID}); owned[sales.Staff.ID] != 3 {
		t.Fatalf("sam owns %d customers, want 3", owned[sales.Staff.ID])
	}
}
