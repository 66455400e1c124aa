package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// The 模型 page shows customers per member tier in ladder order, in the viewer's scope.
func TestConsoleModelsPageTiers(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, segment.Shanghai)
	st.SetClock(func() time.Time { return now })
	e := newConsoleEnv(t, st)
	op := consoleSignIn(t, st, "yunying", staff.Operator)
	e.get(op, "/models").want(t, http.StatusOK, "会员等级")
	if err := st.InTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers([]*customer.Customer{{ID: 1, CreatedAt: now}, {ID: 2, CreatedAt: now}}); err != nil {
			return err
		}
		return tx.BulkInsertOrders([]*event.Order{{OrderID: "o1", CustomerID: 1, AmountMinor: 300000, Currency: "CNY", PaidAt: now.Add(-time.Hour)}})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := model.RunTiers(t.Context(), st, model.DefaultTierConfig(), now); err != nil {
		t.Fatal(err)
	}
	e.get(op, "/models").want(t, http.StatusOK, "会员等级", "普通会员", "中级会员", "高级会员")
}
