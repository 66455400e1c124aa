package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestModelTagsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		cs := []*customer.Customer{{ID: 1, CreatedAt: now.Add(-time.Hour)}, {ID: 2, CreatedAt: now.Add(-90 * 24 * time.Hour)}}
		if err := st.InTx(e.ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
			t.Fatal(err)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.opKey, map[string]any{}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "enabled" {
			t.Fatalf("no enabled: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.opKey, map[string]any{"enabled": true, "group_name": " "}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "group_name" {
			t.Fatalf("blank group name: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/nope/tags", e.opKey, map[string]any{"enabled": true}); r.Code != http.StatusNotFound {
			t.Fatalf("unknown model: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.salesKey, map[string]any{"enabled": true}); r.Code != http.StatusForbidden {
			t.Fatalf("sales may not turn model tags on: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/models/lifecycle/run", e.opKey, nil); r.Code != http.StatusOK {
			t.Fatalf("lifecycle run: %d %s", r.Code, r.Body)
		}
		r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.opKey, map[string]any{"enabled": true})
		if r.Code != http.StatusOK || r.JSON(t)["group_name"] != "生命周期" || r.JSON(t)["added"].(float64) != 2 {
			t.Fatalf("turn on: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.opKey, map[string]any{"enabled": true}); r.JSON(t)["added"].(float64) != 0 {
			t.Fatalf("turning on again changed tags: %s", r.Body)
		}
		r = e.call("GET", "/api/v1/models/lifecycle/tags", e.opKey, nil)
		held := map[string]float64{}
		for _, x := range r.JSON(t)["tags"].([]any) {
			m := x.(map[string]any)
			held[m["value"].(string)] = m["customers"].(float64)
		}
		if r.Code != http.StatusOK || held["新客未购"] != 1 || held["老客未购"] != 1 || held["老客复购"] != 0 {
			t.Fatalf("get: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/models/lifecycle/tags", e.opKey, map[string]any{"enabled": false}); r.Code != http.StatusOK || r.JSON(t)["removed"].(float64) != 2 {
			t.Fatalf("turn off: %d %s", r.Code, r.Body)
		}
	})
}
