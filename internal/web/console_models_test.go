package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestConsoleModelsPage(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, segment.Shanghai)
	st.SetClock(func() time.Time { return now })
	e := newConsoleEnv(t, st)
	op := consoleSignIn(t, st, "yunying", staff.Operator)
	sales := consoleSignIn(t, st, "xiaoshou", staff.Sales)
	// Four customers, 1 and 2 the sales person's; 2 and 4 bought twice, 3 once.
	var cs []*customer.Customer
	var os []*event.Order
	for i := int64(1); i <= 4; i++ {
		c := &customer.Customer{ID: i, CreatedAt: now.Add(-60 * 24 * time.Hour), LastSeenAt: now.Add(-50 * 24 * time.Hour)}
		if i <= 2 {
			c.OwnerID = sales.Staff.ID
		}
		cs = append(cs, c)
		for j := range map[int64]int{1: 0, 2: 2, 3: 1, 4: 2}[i] {
			os = append(os, &event.Order{OrderID: fmt.Sprintf("o%d-%d", i, j), CustomerID: i, AmountMinor: 100, Currency: "CNY", PaidAt: now.Add(-time.Duration(j+1) * 24 * time.Hour)})
		}
	}
	if err := st.InTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		return tx.BulkInsertOrders(os)
	}); err != nil {
		t.Fatal(err)
	}

	// Before any run: the page says so.
	e.get(op, "/models").want(t, http.StatusOK, "AIPL 漏斗", "客户旅程", "尚未计算", "立即重算", "定时重算", "0 3 * * *")

	// The operator queues a recompute; a scheduler runs it.
	r := e.post(op, "/models/recompute", nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/models" {
		t.Fatalf("recompute: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	svc := recompute.New(st, (&Server{Store: st}).ModelMembers, nil)
	runner := scheduler.New(st, "worker", slog.New(slog.DiscardHandler))
	svc.Register(runner)
	if n, err := runner.RunDue(t.Context(), now); err != nil || n != 1 {
		t.Fatalf("ran %d (%v)", n, err)
	}
	page := e.get(op, "/models")
	page.want(t, http.StatusOK, "忠诚", "多次复购客户", "老客复购", "共 4 位客户", "转化 ", "上次重算")
	page.lacks(t, "尚未计算")
	// Sales see their own two customers, and no recompute button or schedule.
	mine := e.get(sales, "/models")
	mine.want(t, http.StatusOK, "你名下客户", "共 2 位客户")
	mine.lacks(t, "立即重算", "定时重算")
	if r := e.post(sales, "/models/recompute", nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sales recomputed: %d", r.StatusCode)
	}
	counts, _ := st.StageCounts(t.Context(), model.AIPLModel, 0)
	if counts[model.Loyal] != 2 || counts[model.Purchase] != 1 || counts[model.Aware] != 1 {
		t.Fatalf("aipl %v", counts)
	}
}
