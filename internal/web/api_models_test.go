package web

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestModelsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		// Ten customers; 1–3 belong to the sales person; 1–8 bought, 9 and 10 did not.
		var cs []*customer.Customer
		var os []*event.Order
		for i := int64(1); i <= 10; i++ {
			c := &customer.Customer{ID: i, CreatedAt: now.Add(-time.Duration(i*10) * 24 * time.Hour)}
			if i <= 3 {
				c.OwnerID = e.sales.ID
			}
			cs = append(cs, c)
			for j := int64(0); j < i && i <= 8; j++ {
				os = append(os, &event.Order{OrderID: fmt.Sprintf("o%d-%d", i, j), CustomerID: i, AmountMinor: i * 1000, Currency: "CNY", PaidAt: now.Add(-time.Duration(j+i) * 24 * time.Hour)})
			}
		}
		if err := st.InTx(e.ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			return tx.BulkInsertOrders(os)
		}); err != nil {
			t.Fatal(err)
		}
		if r := e.call("GET", "/api/v1/models/rfm", e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("before a run: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/rfm/config", e.opKey, map[string]any{"window_days": 0}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "window_days" {
			t.Fatalf("window 0: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/rfm/config", e.opKey, map[string]any{"window_days": 30, "quantiles": []int{20, 40, 60, 120}}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "quantiles[3]" {
			t.Fatalf("quantile 120: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/rfm/config", e.salesKey, map[string]any{"window_days": 30}); r.Code != http.StatusForbidden {
			t.Fatalf("sales may not configure: %d", r.Code)
		}
		r := e.call("PUT", "/api/v1/models/rfm/config", e.opKey, map[string]any{"window_days": 30, "strategies": map[string]string{"重要价值客户": "专属顾问"}})
		if r.Code != http.StatusOK || r.JSON(t)["strategies"].(map[string]any)["重要价值客户"] != "专属顾问" || r.JSON(t)["scoring"] != "quantile" {
			t.Fatalf("put config: %d %s", r.Code, r.Body)
		}
		r = e.call("POST", "/api/v1/models/rfm/run", e.opKey, nil)
		if r.Code != http.StatusOK || r.JSON(t)["saved"] != true {
			t.Fatalf("run: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/models/rfm/run", e.opKey, nil); r.JSON(t)["saved"] != false {
			t.Fatalf("re-run over unchanged data saved: %s", r.Body)
		}
		count := func(key string) (total, none float64) {
			r := e.call("GET", "/api/v1/models/rfm", key, nil)
			if r.Code != http.StatusOK {
				t.Fatalf("get rfm: %d %s", r.Code, r.Body)
			}
			for _, c := range r.JSON(t)["classes"].([]any) {
				m := c.(map[string]any)
				total += m["count"].(float64)
				if m["class"] == "未消费" {
					none = m["count"].(float64)
				}
			}
			return
		}
		if total, none := count(e.opKey); total != 10 || none != 2 {
			t.Fatalf("operator sees %v customers, %v 未消费", total, none)
		}
		if total, none := count(e.salesKey); total != 3 || none != 0 {
			t.Fatalf("sales sees %v customers, %v 未消费", total, none)
		}
		r = e.call("GET", "/api/v1/customers/9/models", e.opKey, nil)
		if m, _ := r.JSON(t)["rfm"].(map[string]any); r.Code != http.StatusOK || m["class"] != "未消费" {
			t.Fatalf("customer 9: %d %s", r.Code, r.Body)
		}
		r = e.call("GET", "/api/v1/customers/8/models", e.opKey, nil)
		if m, _ := r.JSON(t)["rfm"].(map[string]any); r.Code != http.StatusOK || m["f"].(float64) < 1 || m["m_score"] == nil {
			t.Fatalf("customer 8: %d %s", r.Code, r.Body)
		}
		if r := e.call("GET", "/api/v1/customers/8/models", e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("sales reads another's customer: %d", r.Code)
		}
		if r := e.call("GET", "/api/v1/models/rfm/moves", e.opKey, nil); r.Code != http.StatusOK || r.JSON(t)["from"] != nil {
			t.Fatalf("moves with one snapshot: %d %s", r.Code, r.Body)
		}
		r = e.call("GET", "/api/v1/models/pareto?window=365&top=20", e.opKey, nil)
		if p := r.JSON(t); r.Code != http.StatusOK || p["buyers"].(float64) != 8 || p["top_count"].(float64) != 2 {
			t.Fatalf("pareto: %d %s", r.Code, r.Body)
		}
		if r := e.call("GET", "/api/v1/models/pareto?top=0", e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "top" {
			t.Fatalf("top 0: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/config", e.opKey, map[string]any{"new_days": 0}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "new_days" {
			t.Fatalf("new_days 0: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/models/lifecycle/run", e.opKey, nil); r.Code != http.StatusOK || r.JSON(t)["changed"].(float64) != 10 {
			t.Fatalf("lifecycle run: %d %s", r.Code, r.Body)
		}
		r = e.call("GET", "/api/v1/models/lifecycle", e.salesKey, nil)
		var n float64
		for _, s := range r.JSON(t)["stages"].([]any) {
			n += s.(map[string]any)["count"].(float64)
		}
		if r.Code != http.StatusOK || n != 3 {
			t.Fatalf("sales stage counts: %d %s", r.Code, r.Body)
		}
	})
}
