package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestTiersPointsAndGatesAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		// Customers 1–3 belong to the sales person; 1 spent ¥6,000, 2 ¥2,500, 4 ¥800.
		var cs []*customer.Customer
		for i := int64(1); i <= 5; i++ {
			c := &customer.Customer{ID: i, CreatedAt: now.Add(-90 * 24 * time.Hour)}
			if i <= 3 {
				c.OwnerID = e.sales.ID
			}
			cs = append(cs, c)
		}
		os := []*event.Order{
			{OrderID: "o1", CustomerID: 1, AmountMinor: 600000, Currency: "CNY", PaidAt: now.Add(-24 * time.Hour), Products: []event.Product{{SKU: "VIP"}}},
			{OrderID: "o2", CustomerID: 2, AmountMinor: 250000, Currency: "CNY", PaidAt: now.Add(-48 * time.Hour)},
			{OrderID: "o4", CustomerID: 4, AmountMinor: 80000, Currency: "CNY", PaidAt: now.Add(-48 * time.Hour)},
		}
		if err := st.InTx(e.ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			return tx.BulkInsertOrders(os)
		}); err != nil {
			t.Fatal(err)
		}

		// Configuration: overlapping thresholds are refused naming the field; sales may not.
		cfg := e.must(http.StatusOK, "GET", "/api/v1/models/tiers/config", e.opKey, nil)
		tiers := cfg["tiers"].([]any)
		if len(tiers) != 4 || tiers[0].(map[string]any)["name"] != "普通会员" {
			t.Fatalf("default ladder %v", cfg)
		}
		tiers[2].(map[string]any)["min_spend"] = 50000
		if r := e.call("PUT", "/api/v1/models/tiers/config", e.opKey, cfg); r.Code != http.StatusUnprocessableEntity || r.field(t) != "tiers[2].min_spend" {
			t.Fatalf("overlapping thresholds: %d %s", r.Code, r.Body)
		}
		tiers[2].(map[string]any)["min_spend"] = 200000
		cfg["window_days"] = 0
		if r := e.call("PUT", "/api/v1/models/tiers/config", e.opKey, cfg); r.Code != http.StatusUnprocessableEntity || r.field(t) != "window_days" {
			t.Fatalf("window 0: %d %s", r.Code, r.Body)
		}
		cfg["window_days"] = 365
		if r := e.call("PUT", "/api/v1/models/tiers/config", e.salesKey, cfg); r.Code != http.StatusForbidden {
			t.Fatalf("sales configuring tiers: %d", r.Code)
		}
		e.must(http.StatusOK, "PUT", "/api/v1/models/tiers/config", e.opKey, cfg)

		if r := e.call("POST", "/api/v1/models/tiers/preview", e.opKey, map[string]any{"tiers": []any{map[string]any{"name": "普通"}}, "window_days": 30}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "tiers" {
			t.Fatalf("preview of one tier: %d %s", r.Code, r.Body)
		}
		if pv := e.must(http.StatusOK, "POST", "/api/v1/models/tiers/preview", e.opKey, cfg); pv["placed"].(float64) != 5 || len(pv["tiers"].([]any)) != 4 {
			t.Fatalf("preview %v", pv)
		}
		run := e.must(http.StatusOK, "POST", "/api/v1/models/tiers/run", e.opKey, nil)
		if run["changed"].(float64) != 5 || run["points"].(map[string]any)["order_entries"].(float64) != 3 {
			t.Fatalf("run %v", run)
		}
		if again := e.must(http.StatusOK, "POST", "/api/v1/models/tiers/run", e.opKey, nil); again["changed"].(float64) != 0 || again["points"].(map[string]any)["order_entries"].(float64) != 0 {
			t.Fatalf("re-run %v", again)
		}
		count := func(key string) map[string]float64 {
			out := map[string]float64{}
			for _, x := range e.must(http.StatusOK, "GET", "/api/v1/models/tiers", key, nil)["tiers"].([]any) {
				m := x.(map[string]any)
				out[m["tier"].(string)] = m["count"].(float64)
			}
			return out
		}
		// 1: ¥6,000 → 高级; 2: ¥2,500 → 中级; 4: ¥800 → 初级; 3, 5: 普通.
		if got := count(e.opKey); got["高级会员"] != 1 || got["中级会员"] != 1 || got["初级会员"] != 1 || got["普通会员"] != 2 {
			t.Fatalf("operator's counts %v", got)
		}
		if got := count(e.salesKey); got["高级会员"] != 1 || got["中级会员"] != 1 || got["初级会员"] != 0 || got["普通会员"] != 1 {
			t.Fatalf("sales counts (own customers only) %v", got)
		}

		// Points: balance and ledger; spend beyond the balance is 422 and writes nothing.
		p := e.must(http.StatusOK, "GET", "/api/v1/customers/1/points", e.salesKey, nil)
		if p["balance"].(float64) != 6000 || len(p["ledger"].([]any)) != 1 {
			t.Fatalf("points %v", p)
		}
		if r := e.call("POST", "/api/v1/customers/1/points", e.salesKey, map[string]any{"action": "spend", "points": 6001}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "points" {
			t.Fatalf("overspend: %d %s", r.Code, r.Body)
		}
		body := map[string]any{"action": "spend", "points": 500, "reason": "兑换礼品", "idempotency_key": "gift-1"}
		if r := e.call("POST", "/api/v1/customers/1/points", e.salesKey, body); r.Code != http.StatusCreated {
			t.Fatalf("spend: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/customers/1/points", e.salesKey, body); r.Code != http.StatusOK || r.JSON(t)["balance"].(map[string]any)["balance"].(float64) != 5500 {
			t.Fatalf("retried spend: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/customers/1/points", e.salesKey, map[string]any{"action": "adjust", "points": 10, "reason": "x"}); r.Code != http.StatusForbidden {
			t.Fatalf("sales adjusting: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/customers/4/points", e.salesKey, map[string]any{"action": "spend", "points": 1}); r.Code != http.StatusNotFound {
			t.Fatalf("sales spending another's customer's points: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/customers/4/points", e.opKey, map[string]any{"action": "adjust", "points": 10}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "reason" {
			t.Fatalf("adjust without reason: %d %s", r.Code, r.Body)
		}
		e.must(http.StatusCreated, "POST", "/api/v1/customers/4/points", e.opKey, map[string]any{"action": "adjust", "points": 10, "reason": "客诉补偿"})
		if r := e.call("POST", "/api/v1/customers/4/points", e.opKey, map[string]any{"action": "refund", "points": 10}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "action" {
			t.Fatalf("unknown action: %d %s", r.Code, r.Body)
		}
		page := e.must(http.StatusOK, "GET", "/api/v1/customers/1/points?limit=1", e.opKey, nil)
		next := page["next_before"].(float64)
		if len(page["ledger"].([]any)) != 1 || next == 0 {
			t.Fatalf("page %v", page)
		}
		if rest := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/customers/1/points?limit=1&before=%d", int64(next)), e.opKey, nil); len(rest["ledger"].([]any)) != 1 || rest["next_before"] != nil {
			t.Fatalf("second page %v", rest)
		}
		if r := e.call("PUT", "/api/v1/models/points/config", e.opKey, map[string]any{"per_yuan": 1, "expiry_days": 365, "events": []any{map[string]any{"event": "Checked In", "points": 0}}}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "events[0].points" {
			t.Fatalf("bad points config: %d %s", r.Code, r.Body)
		}

		// The customer's models show tier, history and points.
		m := e.must(http.StatusOK, "GET", "/api/v1/customers/1/models", e.salesKey, nil)
		if tier := m["tier"].(map[string]any); tier["tier"] != "高级会员" || len(tier["history"].([]any)) != 1 || m["points"].(map[string]any)["balance"].(float64) != 5500 {
			t.Fatalf("customer models %v", m)
		}

		// Gates.
		if r := e.call("POST", "/api/v1/gates", e.opKey, map[string]any{"name": "钻石群", "min_tier": "钻石会员"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "min_tier" {
			t.Fatalf("gate on an unknown tier: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/gates", e.salesKey, map[string]any{"name": "x", "min_tier": "中级会员"}); r.Code != http.StatusForbidden {
			t.Fatalf("sales creating a gate: %d", r.Code)
		}
		g := e.must(http.StatusCreated, "POST", "/api/v1/gates", e.opKey, map[string]any{"name": "高级合伙人群", "min_tier": "中级会员", "order": map[string]any{"min_amount": 100000, "within_days": 30}})
		gid := int64(g["id"].(float64))
		check := func(key string, cust int64) apiResp {
			return e.call("GET", fmt.Sprintf("/api/v1/gates/%d/check?customer_id=%d", gid, cust), key, nil)
		}
		if r := check(e.salesKey, 1); r.Code != http.StatusOK || r.JSON(t)["allowed"] != true {
			t.Fatalf("customer 1: %d %s", r.Code, r.Body)
		}
		if r := check(e.opKey, 4); r.Code != http.StatusOK || r.JSON(t)["allowed"] != false || r.JSON(t)["reason"] == "" {
			t.Fatalf("customer 4: %d %s", r.Code, r.Body)
		}
		if r := check(e.salesKey, 4); r.Code != http.StatusNotFound {
			t.Fatalf("sales checking another's customer: %d", r.Code)
		}
		if r := e.call("GET", fmt.Sprintf("/api/v1/gates/%d/check", gid), e.opKey, nil); r.Code != http.StatusBadRequest {
			t.Fatalf("check without customer_id: %d", r.Code)
		}
		if list := e.must(http.StatusOK, "GET", "/api/v1/gates", e.salesKey, nil); len(list["gates"].([]any)) != 1 {
			t.Fatalf("gates %v", list)
		}
		// Edit: to 高级会员 only; customer 2 (中级) no longer passes.
		path := fmt.Sprintf("/api/v1/gates/%d", gid)
		if r := e.call("PUT", path, e.opKey, map[string]any{"name": "高级合伙人群", "min_tier": "高级会员", "order": map[string]any{"within_days": 0}}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "order.within_days" {
			t.Fatalf("bad gate edit: %d %s", r.Code, r.Body)
		}
		if g := e.must(http.StatusOK, "PUT", path, e.opKey, map[string]any{"name": "高级合伙人群", "min_tier": "高级会员"}); g["order"] != nil || g["min_tier"] != "高级会员" {
			t.Fatalf("edited gate %v", g)
		}
		if r := check(e.opKey, 2); r.JSON(t)["allowed"] != false {
			t.Fatalf("customer 2 after the edit: %s", r.Body)
		}
		if r := e.call("DELETE", path, e.salesKey, nil); r.Code != http.StatusForbidden {
			t.Fatalf("sales deleting a gate: %d", r.Code)
		}
		if r := e.call("DELETE", path, e.opKey, nil); r.Code != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Code, r.Body)
		}
		if r := e.call("GET", path, e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("deleted gate: %d", r.Code)
		}
	})
}

// Check-ins sent to /v1/track earn points in the ingesting transaction: once per day (the
// default daily cap), and a replayed messageId never earns twice.
func TestCheckInPointsOnIngestion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		_, writeKey, err := st.CreateKey(e.ctx, staff.WriteKey, "app", "", e.admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		track := func(msg, event string, ts time.Time) {
			t.Helper()
			body := fmt.Sprintf(`{"messageId":%q,"userId":"u1","event":%q,"timestamp":%q}`, msg, event, ts.Format(time.RFC3339))
			req := httptest.NewRequest("POST", "/v1/track", strings.NewReader(body))
			req.SetBasicAuth(writeKey, "")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("track: %d %s", rec.Code, rec.Body)
			}
		}
		track("c1", "Checked In", now)
		track("c1", "Checked In", now) // replay
		track("c2", "Checked In", now) // same day: capped
		track("r1", "Referral Converted", now)
		track("r1", "Referral Converted", now) // replay
		track("c3", "Checked In", now.Add(24*time.Hour))
		c, err := st.CustomerByIdentity(e.ctx, customer.Identity{Kind: customer.UserID, Value: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		p := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/customers/%d/points", c), e.opKey, nil)
		if p["balance"].(float64) != 120 || len(p["ledger"].([]any)) != 3 {
			t.Fatalf("points after check-ins %v", p)
		}
	})
}
