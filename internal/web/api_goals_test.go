package web

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// Goals are set by operators and measured from the data in each reader's scope: GMV so far
// agrees with SQL over the orders, progress and pace follow the period's elapsed share, and a
// GMV key result carries its lever tree.
func TestAPIGoals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st)
		now := time.Date(2024, 3, 7, 0, 0, 0, 0, segment.Shanghai) // 6 of the 7 days gone
		st.SetClock(func() time.Time { return now })
		body := map[string]any{"name": "三月冲刺", "from": "2024-03-01", "to": "2024-03-08", "key_results": []map[string]any{
			{"name": "GMV 200 元", "metric": "gmv_minor", "target": 20000},
			{"name": "复购率 40%", "metric": "repurchase_rate", "target": 0.4},
		}}
		e.must(http.StatusForbidden, "POST", "/api/v1/goals", e.salesKey, body)
		bad := map[string]any{"name": "x", "from": "2024-03-01", "to": "2024-03-08", "key_results": []map[string]any{{"name": "x", "metric": "profit", "target": 1}}}
		if r := e.call("POST", "/api/v1/goals", e.opKey, bad); r.Code != http.StatusUnprocessableEntity || r.field(t) != "key_results[0].metric" {
			t.Fatalf("bad metric: %d %s", r.Code, r.Body)
		}
		created := e.must(http.StatusCreated, "POST", "/api/v1/goals", e.opKey, body)
		id := int64(created["id"].(float64))

		var all int64
		if err := st.DB().QueryRow(st.Rebind(`SELECT SUM(amount_minor - refunded_minor) FROM orders WHERE paid_at >= ? AND paid_at < ?`),
			time.Date(2024, 3, 1, 0, 0, 0, 0, segment.Shanghai).UnixMilli(), now.UnixMilli()).Scan(&all); err != nil {
			t.Fatal(err)
		}
		g := e.must(http.StatusOK, "GET", "/api/v1/goals/"+strconv.FormatInt(id, 10), e.adminKey, nil)
		p := g["progress"].([]any)[0].(map[string]any)
		if p["current"].(float64) != float64(all) || all != 10500 || p["status"] != "behind" || p["progress"].(float64) != 0.525 || p["projected"].(float64) != 12250 {
			t.Fatalf("GMV key result: %v (SQL says %d)", p, all)
		}
		tree := p["tree"].(map[string]any)["sum"].(map[string]any)
		if kids := tree["children"].([]any); kids[0].(map[string]any)["current"].(float64) != 10500 || kids[1].(map[string]any)["current"].(float64) != 0 {
			t.Fatalf("every buyer so far is new: %v", kids)
		}
		if r := g["progress"].([]any)[1].(map[string]any); r["current"].(float64) != 0.3333 || r["status"] != "behind" || r["projected"] != nil {
			t.Fatalf("repurchase rate key result: %v", r)
		}
		// The sales person's view counts only their own customers' orders (c1 and c3).
		mine := e.must(http.StatusOK, "GET", "/api/v1/goals", e.salesKey, nil)["goals"].([]any)[0].(map[string]any)
		if cur := mine["progress"].([]any)[0].(map[string]any)["current"].(float64); cur != 5500 {
			t.Fatalf("sales sees GMV %v, want 5500", cur)
		}
		// The BI paths answer as the analytics ones do.
		m := e.must(http.StatusOK, "GET", "/api/v1/metrics?from=2024-03-01&to=2024-03-08", e.adminKey, nil)
		if v := metric(t, m["total"], "gmv_minor"); v.(float64) != 10500 {
			t.Fatalf("/api/v1/metrics GMV %v", v)
		}
		e.must(http.StatusNoContent, "DELETE", "/api/v1/goals/"+strconv.FormatInt(id, 10), e.opKey, nil)
		e.must(http.StatusNotFound, "GET", "/api/v1/goals/"+strconv.FormatInt(id, 10), e.adminKey, nil)
	})
}
