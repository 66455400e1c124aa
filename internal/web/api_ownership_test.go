package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestAPIOwnershipRoles walks the ownership and privacy routes as each role: who may call
// them at all (401/403 before any handler runs).
func TestAPIOwnershipRoles(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newAPIEnv(t, st)
	_, contentKey, err := st.CreateKey(e.ctx, staff.APIKey, "content", staff.Content, e.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}, "name": "张三"})
	cust := fmt.Sprint("/api/v1/customers/", c)
	allowed := map[string][]string{ // route → roles allowed (admin always is)
		"DELETE " + cust:               {},
		"GET " + cust + "/export":      {},
		"GET " + cust + "/owner":       {"operator", "sales"},
		"PUT " + cust + "/owner":       {"operator"},
		"POST /api/v1/customers/owner": {"operator"},
		"GET /api/v1/pool":             {"operator", "sales"},
		"POST /api/v1/pool/claim":      {"operator", "sales"},
		"POST /api/v1/pool/release":    {"operator", "sales"},
		"GET /api/v1/pool/config":      {"operator", "sales"},
		"PUT /api/v1/pool/config":      {"operator"},
		"GET /api/v1/transfers":        {"operator"},
		"POST /api/v1/transfers":       {"operator"},
		"GET /api/v1/transfers/1":      {"operator"},
	}
	keys := map[string]string{"admin": e.adminKey, "operator": e.opKey, "sales": e.salesKey, "content": contentKey, "anonymous": ""}
	for route, roles := range allowed {
		method, path, _ := strings.Cut(route, " ")
		for role, key := range keys {
			r := e.call(method, path, key, "{}")
			may := role == "admin"
			for _, x := range roles {
				may = may || x == role
			}
			switch {
			case role == "anonymous":
				if r.Code != http.StatusUnauthorized {
					t.Errorf("%s anonymous: %d, want 401", route, r.Code)
				}
			case !may && r.Code != http.StatusForbidden:
				t.Errorf("%s as %s: %d %s, want 403", route, role, r.Code, r.Body)
			case may && (r.Code == http.StatusForbidden || r.Code == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d %s, want it allowed", route, role, r.Code, r.Body)
			}
		}
	}
}

func TestAPIOwnerAssignAndHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		c := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}, "name": "张三"})
		path := fmt.Sprint("/api/v1/customers/", c, "/owner")
		v := e.must(http.StatusOK, "PUT", path, e.opKey, map[string]any{"owner_id": e.sales.ID, "note": "新线索"})
		if v["changed"] != true || v["owner"].(map[string]any)["login"] != "sam" {
			t.Fatalf("assign: %v", v)
		}
		h := v["history"].([]any)
		if len(h) != 1 || h[0].(map[string]any)["by"].(map[string]any)["login"] != "olivia" || h[0].(map[string]any)["reason"] != "manual" {
			t.Fatalf("history %v", h)
		}
		// Again: no change, nothing recorded.
		v = e.must(http.StatusOK, "PUT", path, e.opKey, map[string]any{"owner_id": e.sales.ID})
		if v["changed"] != false || len(v["history"].([]any)) != 1 {
			t.Fatalf("same owner again: %v", v)
		}
		// The sales person sees it now; bad input names the field and writes nothing.
		e.must(http.StatusOK, "GET", path, e.salesKey, nil)
		for _, tc := range []struct {
			body  any
			code  int
			field string
		}{
			{map[string]any{"owner_id": 999}, 422, "owner_id"},
			{map[string]any{"owner_id": -1}, 422, "owner_id"},
			{map[string]any{"owner_id": "sam"}, 400, "owner_id"},
			{map[string]any{"owner": 1}, 400, ""},
			{map[string]any{"owner_id": e.operator.ID, "note": strings.Repeat("x", 501)}, 422, "note"},
		} {
			r := e.call("PUT", path, e.opKey, tc.body)
			if r.Code != tc.code || r.field(t) != tc.field {
				t.Errorf("%v: %d %s, want %d on %q", tc.body, r.Code, r.Body, tc.code, tc.field)
			}
		}
		if c, _ := st.Customer(e.ctx, c); c.OwnerID != e.sales.ID {
			t.Fatal("a refused change wrote")
		}
		// Back to the pool: the sales person no longer sees it.
		e.must(http.StatusOK, "PUT", path, e.opKey, map[string]any{"owner_id": nil})
		if r := e.call("GET", path, e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("sales reads the owner of a pool customer: %d", r.Code)
		}
		// Bulk: a rule spreads customers; a cap the rule cannot meet is refused whole.
		var many []int64
		for i := 0; i < 6; i++ {
			many = append(many, e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": fmt.Sprint("b", i)}}}))
		}
		r := e.call("POST", "/api/v1/customers/owner", e.opKey, map[string]any{"customers": many, "rule": []any{map[string]any{"staff_id": e.sales.ID, "cap": 2}, map[string]any{"staff_id": e.operator.ID, "cap": 2}}})
		if r.Code != 422 || r.field(t) != "rule" {
			t.Fatalf("over the caps: %d %s", r.Code, r.Body)
		}
		v = e.must(http.StatusOK, "POST", "/api/v1/customers/owner", e.opKey, map[string]any{"customers": append(many, 9999), "rule": []any{map[string]any{"staff_id": e.sales.ID, "weight": 2}, map[string]any{"staff_id": e.operator.ID}}})
		if v["changed"] != float64(6) || fmt.Sprint(v["missing"]) != "[6]" {
			t.Fatalf("bulk: %v", v)
		}
		owned, _ := st.OwnedCounts(e.ctx, []int64{e.sales.ID, e.operator.ID})
		if owned[e.sales.ID] != 4 || owned[e.operator.ID] != 2 {
			t.Fatalf("owned %v, want 4 and 2 (weights 2:1)", owned)
		}
		// A segment: the customers whose source is 门店 go to the operator.
		var shop []int64
		for i := 0; i < 3; i++ {
			shop = append(shop, e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": fmt.Sprint("shop", i)}}, "source": "门店"}))
		}
		v = e.must(http.StatusOK, "POST", "/api/v1/customers/owner", e.opKey, map[string]any{"segment": map[string]any{"field": "source", "cmp": "eq", "value": "门店"}, "owner_id": e.operator.ID})
		if v["changed"] != float64(3) {
			t.Fatalf("bulk by segment: %v", v)
		}
		for _, id := range shop {
			if c, _ := st.Customer(e.ctx, id); c.OwnerID != e.operator.ID {
				t.Fatalf("segment member %d not assigned", id)
			}
		}
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"segment": map[string]any{"field": "nope", "cmp": "eq", "value": 1}, "owner_id": e.operator.ID}, "segment"},
			{map[string]any{"segment_id": 999, "owner_id": e.operator.ID}, "segment_id"},
			{map[string]any{"customers": many, "segment_id": 1, "owner_id": e.operator.ID}, "customers"},
			{map[string]any{"customers": many}, "owner_id"},
		} {
			if r := e.call("POST", "/api/v1/customers/owner", e.opKey, tc.body); r.Code != 422 || !strings.HasPrefix(r.field(t), tc.field) {
				t.Errorf("%v: %d %s, want 422 on %s", tc.body, r.Code, r.Body, tc.field)
			}
		}
		if page, _ := st.ListAudit(e.ctx, store.AuditQuery{Action: audit.OwnerBulkSet}); len(page.Entries) != 2 {
			t.Fatalf("%d bulk owner audit entries, want 2", len(page.Entries))
		}
	})
}

func TestAPIPoolClaimAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		var pool []int64
		for i := 0; i < 4; i++ {
			pool = append(pool, e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": fmt.Sprint("p", i)}}, "name": fmt.Sprint("客户", i), "phone": fmt.Sprint("1380000123", i)}))
		}
		owned := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "owned"}}, "owner": "olivia"})
		v := e.must(http.StatusOK, "GET", "/api/v1/pool?count=1", e.salesKey, nil)
		list := v["customers"].([]any)
		if len(list) != 4 || v["total"] != float64(4) {
			t.Fatalf("pool: %v", v)
		}
		if p := list[0].(map[string]any)["phone"]; p != "138****1230" {
			t.Fatalf("pool phone %v, want it masked", p)
		}
		e.must(http.StatusOK, "PUT", "/api/v1/pool/config", e.opKey, map[string]any{"daily_claim_limit": 2, "max_owned": 0, "release_after_days": 30})
		v = e.must(http.StatusOK, "POST", "/api/v1/pool/claim", e.salesKey, map[string]any{"customers": []int64{pool[0]}})
		if fmt.Sprint(v["claimed"]) != fmt.Sprint([]any{float64(pool[0])}) || v["claims_left_today"] != float64(1) {
			t.Fatalf("claim: %v", v)
		}
		// Someone else was faster: 409 naming the customers.
		if r := e.call("POST", "/api/v1/pool/claim", e.opKey, map[string]any{"customers": []int64{pool[0]}}); r.Code != http.StatusConflict {
			t.Fatalf("claiming a claimed customer: %d %s", r.Code, r.Body)
		}
		// Over the daily limit: 422 on daily_claim_limit, nothing claimed.
		if r := e.call("POST", "/api/v1/pool/claim", e.salesKey, map[string]any{"customers": []int64{pool[1], pool[2]}}); r.Code != 422 || r.field(t) != "daily_claim_limit" {
			t.Fatalf("over the limit: %d %s", r.Code, r.Body)
		}
		if c, _ := st.Customer(e.ctx, pool[1]); c.OwnerID != 0 {
			t.Fatal("a refused claim wrote")
		}
		for _, body := range []any{map[string]any{"customers": []int64{}}, map[string]any{"customers": []int64{pool[1], pool[1]}}} {
			if r := e.call("POST", "/api/v1/pool/claim", e.salesKey, body); r.Code != 422 || !strings.HasPrefix(r.field(t), "customers") {
				t.Errorf("claim %v: %d %s", body, r.Code, r.Body)
			}
		}
		if r := e.call("PUT", "/api/v1/pool/config", e.opKey, map[string]any{"daily_claim_limit": -1}); r.Code != 422 || r.field(t) != "daily_claim_limit" {
			t.Fatalf("bad config: %d %s", r.Code, r.Body)
		}
		// The claimed customer is now the sales person's; they may give up only their own.
		e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", pool[0]), e.salesKey, nil)
		v = e.must(http.StatusOK, "POST", "/api/v1/pool/release", e.salesKey, map[string]any{"customers": []int64{pool[0], owned}})
		if fmt.Sprint(v["released"]) != fmt.Sprint([]any{float64(pool[0])}) || fmt.Sprint(v["unchanged"]) != fmt.Sprint([]any{float64(owned)}) {
			t.Fatalf("release: %v", v)
		}
		if c, _ := st.Customer(e.ctx, owned); c.OwnerID != e.operator.ID {
			t.Fatal("sales released another's customer")
		}
		v = e.must(http.StatusOK, "GET", "/api/v1/pool", e.salesKey, nil)
		var back map[string]any
		for _, x := range v["customers"].([]any) {
			if m := x.(map[string]any); m["id"] == float64(pool[0]) {
				back = m
			}
		}
		if back == nil || back["last_owner"].(map[string]any)["login"] != "sam" || back["pooled_at"] == nil {
			t.Fatalf("released customer in the pool: %v", back)
		}
		if me := v["me"].(map[string]any); me["claims_today"] != float64(1) || me["daily_claim_limit"] != float64(2) {
			t.Fatalf("claim budget %v", me)
		}
	})
}

func TestAPITransferAndErasure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		leaver := &staff.Staff{Login: "leaver", Name: "离职员工", Role: staff.Sales}
		if err := st.CreateStaff(e.ctx, leaver, ""); err != nil {
			t.Fatal(err)
		}
		var theirs []int64
		for i := 0; i < 5; i++ {
			theirs = append(theirs, e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": fmt.Sprint("t", i)}}, "owner": "leaver"}))
		}
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"kind": "fired", "from_staff_id": leaver.ID, "successors": []any{map[string]any{"staff_id": e.sales.ID}}}, "kind"},
			{map[string]any{"kind": "resigned", "from_staff_id": leaver.ID}, "successors"},
			{map[string]any{"kind": "resigned", "from_staff_id": leaver.ID, "successors": []any{map[string]any{"staff_id": 999}}}, "successors[0].staff_id"},
			{map[string]any{"kind": "handover", "from_staff_id": leaver.ID, "successors": []any{map[string]any{"staff_id": e.sales.ID}}, "customers": []int64{theirs[0], 999}}, "customers[1]"},
		} {
			if r := e.call("POST", "/api/v1/transfers", e.opKey, tc.body); r.Code != 422 || r.field(t) != tc.field {
				t.Errorf("%v: %d %s, want 422 on %s", tc.body, r.Code, r.Body, tc.field)
			}
		}
		v := e.must(http.StatusAccepted, "POST", "/api/v1/transfers", e.opKey, map[string]any{"kind": "resigned", "from_staff_id": leaver.ID,
			"successors": []any{map[string]any{"staff_id": e.sales.ID}, map[string]any{"staff_id": e.operator.ID}}, "note": "离职"})
		id := int64(v["id"].(float64))
		if v["state"] != "queued" || v["counts"].(map[string]any)["customer"].(map[string]any)["pending"] != float64(5) {
			t.Fatalf("created: %v", v)
		}
		// The scheduler of siyu serve runs it; here one over the same store.
		sch := scheduler.New(st, "test", nil)
		ownership.New(st, nil).Register(sch)
		if _, err := sch.RunDue(e.ctx, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		v = e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/transfers/", id, "?kind=customer"), e.opKey, nil)
		if v["state"] != "done" || len(v["items"].([]any)) != 5 || v["counts"].(map[string]any)["customer"].(map[string]any)["moved"] != float64(5) {
			t.Fatalf("transfer: %v", v)
		}
		if list := e.must(http.StatusOK, "GET", "/api/v1/transfers", e.opKey, nil)["transfers"].([]any); len(list) != 1 {
			t.Fatalf("%d transfers listed", len(list))
		}
		if page, _ := st.ListAudit(e.ctx, store.AuditQuery{Action: audit.OwnerTransfer}); len(page.Entries) != 1 {
			t.Fatalf("%d transfer audit entries", len(page.Entries))
		}
		// Erasure: confirm must repeat the id; then it is gone, audited, and gone stays gone.
		c := theirs[0]
		path := fmt.Sprint("/api/v1/customers/", c)
		if r := e.call("DELETE", path, e.adminKey, map[string]any{"confirm": "yes"}); r.Code != 422 || r.field(t) != "confirm" {
			t.Fatalf("erase without confirm: %d %s", r.Code, r.Body)
		}
		x := e.must(http.StatusOK, "GET", path+"/export", e.adminKey, nil)
		if x["profile"].(map[string]any)["id"] != float64(c) || len(x["owner_history"].([]any)) != 2 {
			t.Fatalf("export: %v", x)
		}
		v = e.must(http.StatusOK, "DELETE", path, e.adminKey, map[string]any{"confirm": fmt.Sprint(c), "reason": "客户要求删除"})
		if v["removed"].(map[string]any)["identities"] != float64(1) {
			t.Fatalf("erasure: %v", v)
		}
		if r := e.call("GET", path, e.adminKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("GET an erased customer: %d", r.Code)
		}
		for _, m := range []string{"DELETE", "GET"} {
			p := path
			if m == "GET" {
				p += "/export"
			}
			if r := e.call(m, p, e.adminKey, map[string]any{"confirm": fmt.Sprint(c)}); r.Code != http.StatusGone {
				t.Fatalf("%s %s after erasure: %d %s, want 410", m, p, r.Code, r.Body)
			}
		}
		for _, action := range []string{audit.CustomerDelete, audit.CustomerExport} {
			page, err := st.ListAudit(e.ctx, store.AuditQuery{Action: action})
			if err != nil || len(page.Entries) != 1 || page.Entries[0].Target != fmt.Sprint("customer:", c) || page.Entries[0].StaffID != e.admin.ID {
				t.Fatalf("%s audit: %+v %v", action, page, err)
			}
		}
	})
}
