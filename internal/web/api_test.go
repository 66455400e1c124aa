package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// apiEnv is a server on a fresh store with an admin, an operator and a sales person, each with
// an API key.
type apiEnv struct {
	t                         *testing.T
	st                        *store.Store
	h                         http.Handler
	admin, operator, sales    *staff.Staff
	adminKey, opKey, salesKey string
	salesLogin, operatorLogin string
	sessionToken, sessionCSRF string // the admin's browser session
	ctx                       context.Context
}

func newAPIEnv(t *testing.T, st *store.Store) *apiEnv {
	t.Helper()
	e := &apiEnv{t: t, st: st, ctx: context.Background()}
	srv := &Server{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.h = srv.Handler()
	mk := func(login string, role staff.Role) (*staff.Staff, string) {
		m := &staff.Staff{Login: login, Name: login + " name", Role: role}
		if err := st.CreateStaff(e.ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		_, secret, err := st.CreateKey(e.ctx, staff.APIKey, login+" key", role, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return m, secret
	}
	e.admin, e.adminKey = mk("admin", staff.Admin)
	e.operator, e.opKey = mk("olivia", staff.Operator)
	e.sales, e.salesKey = mk("sam", staff.Sales)
	e.salesLogin, e.operatorLogin = e.sales.Login, e.operator.Login
	tok, sess, err := st.CreateSession(e.ctx, e.admin.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.sessionToken, e.sessionCSRF = tok, sess.CSRF
	return e
}

// apiResp is a recorded answer.
type apiResp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r apiResp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.Code, err, r.Body)
	}
	return v
}

// field is error.field of an error answer.
func (r apiResp) field(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

// call sends a request with a bearer key ("" for none); body is JSON-encoded unless it is a
// string, sent as is.
func (e *apiEnv) call(method, path, key string, body any, hdr ...string) apiResp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Cookie" {
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: hdr[i+1]})
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return apiResp{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// must calls and fails the test unless the status is want; it returns the decoded body.
func (e *apiEnv) must(want int, method, path, key string, body any) map[string]any {
	e.t.Helper()
	r := e.call(method, path, key, body)
	if r.Code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Body, want)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(e.t)
}

// create makes a customer through the API and returns its id.
func (e *apiEnv) create(key string, body map[string]any) int64 {
	e.t.Helper()
	return int64(e.must(http.StatusCreated, "POST", "/api/v1/customers", key, body)["id"].(float64))
}

func ids(t *testing.T, v map[string]any) []int64 {
	t.Helper()
	var out []int64
	for _, c := range v["customers"].([]any) {
		out = append(out, int64(c.(map[string]any)["id"].(float64)))
	}
	return out
}

func TestAPIAuthentication(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		// Every route but the document refuses a request without credentials.
		for _, rt := range apiRoutes {
			path := strings.ReplaceAll(rt.Pattern, "{id}", "1")
			r := e.call(rt.Method, path, "", nil)
			if rt.Public {
				if r.Code != http.StatusOK {
					t.Errorf("%s %s without credentials: %d, want 200", rt.Method, path, r.Code)
				}
				continue
			}
			if r.Code != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d, want 401", rt.Method, path, r.Code)
			}
		}
		if r := e.call("GET", "/api/v1/customers", "sk_nonsense", nil); r.Code != http.StatusUnauthorized {
			t.Errorf("unknown key: %d, want 401", r.Code)
		}
		r := e.call("GET", "/api/v1/customers", "", nil, "Authorization", "Basic "+e.adminKey)
		if r.Code != http.StatusUnauthorized {
			t.Errorf("basic auth on the API: %d, want 401", r.Code)
		}
		_, writeKey, err := st.CreateKey(e.ctx, staff.WriteKey, "shop", "", e.admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.call("GET", "/api/v1/customers", writeKey, nil); r.Code != http.StatusUnauthorized {
			t.Errorf("write key on /api: %d, want 401", r.Code)
		}
		// The sales role may not reach admin routes.
		for _, c := range []struct{ method, path string }{{"GET", "/api/v1/keys"}, {"POST", "/api/v1/keys"}, {"DELETE", "/api/v1/keys/1"}, {"POST", "/api/v1/staff"}, {"PATCH", "/api/v1/staff/1"}, {"POST", "/api/v1/attributes"}} {
			if r := e.call(c.method, c.path, e.salesKey, map[string]any{}); r.Code != http.StatusForbidden {
				t.Errorf("sales %s %s: %d, want 403", c.method, c.path, r.Code)
			}
		}
		if r := e.call("GET", "/api/v1/keys", e.opKey, nil); r.Code != http.StatusForbidden {
			t.Errorf("operator GET /keys: %d, want 403", r.Code)
		}
		// A content key sees no customers.
		_, contentKey, _ := st.CreateKey(e.ctx, staff.APIKey, "content", staff.Content, e.admin.ID)
		if r := e.call("GET", "/api/v1/customers", contentKey, nil); r.Code != http.StatusForbidden {
			t.Errorf("content GET /customers: %d, want 403", r.Code)
		}
		// A browser session reads freely but changes nothing without the CSRF header.
		id := e.create(e.adminKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}, "name": "before"})
		path := fmt.Sprint("/api/v1/customers/", id)
		if r := e.call("GET", path, "", nil, "Cookie", e.sessionToken); r.Code != http.StatusOK {
			t.Errorf("session GET: %d %s, want 200", r.Code, r.Body)
		}
		if r := e.call("PATCH", path, "", map[string]any{"name": "after"}, "Cookie", e.sessionToken); r.Code != http.StatusForbidden {
			t.Errorf("session PATCH without CSRF: %d, want 403", r.Code)
		}
		if r := e.call("PATCH", path, "", map[string]any{"name": "after"}, "Cookie", e.sessionToken, "X-CSRF-Token", "wrong"); r.Code != http.StatusForbidden {
			t.Errorf("session PATCH with a wrong CSRF token: %d, want 403", r.Code)
		}
		if c, _ := st.Customer(e.ctx, id); c.Name != "before" {
			t.Fatalf("name %q after refused PATCHes, want before", c.Name)
		}
		if r := e.call("PATCH", path, "", map[string]any{"name": "after"}, "Cookie", e.sessionToken, "X-CSRF-Token", e.sessionCSRF); r.Code != http.StatusOK {
			t.Errorf("session PATCH with CSRF: %d %s, want 200", r.Code, r.Body)
		}
		me := e.must(http.StatusOK, "GET", "/api/v1/me", e.salesKey, nil)
		if me["role"] != "sales" || me["data_scope"] != "own" || me["scope_owner_id"] != float64(e.sales.ID) || me["staff"].(map[string]any)["login"] != "sam" {
			t.Errorf("/me for the sales key: %v", me)
		}
		if r := e.call("GET", "/api/v1/me", "", nil, "Cookie", e.sessionToken); r.Code != http.StatusOK || r.JSON(t)["data_scope"] != "all" || r.JSON(t)["key"] != nil {
			t.Errorf("/me for the session: %d %s", r.Code, r.Body)
		}
		// Unknown API paths and methods answer in JSON.
		if r := e.call("GET", "/api/v1/nope", e.adminKey, nil); r.Code != http.StatusNotFound || r.JSON(t)["error"] == nil {
			t.Errorf("unknown path: %d %s, want a JSON 404", r.Code, r.Body)
		}
		if r := e.call("PUT", "/api/v1/customers/1", e.adminKey, nil); r.Code != http.StatusMethodNotAllowed || !strings.Contains(r.Header.Get("Allow"), "PATCH") {
			t.Errorf("PUT a customer: %d (Allow %q), want 405 allowing PATCH", r.Code, r.Header.Get("Allow"))
		}
	})
}

func TestAPIKeysCreateUseRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		out := e.must(http.StatusCreated, "POST", "/api/v1/keys", e.adminKey, map[string]any{"kind": "api", "name": "crm sync", "role": "operator"})
		secret := out["secret"].(string)
		keyID := int64(out["key"].(map[string]any)["id"].(float64))
		if !strings.HasPrefix(secret, "sk_") || out["key"].(map[string]any)["role"] != "operator" {
			t.Fatalf("created %v", out)
		}
		e.must(http.StatusOK, "GET", "/api/v1/customers", secret, nil)
		list := e.must(http.StatusOK, "GET", "/api/v1/keys", e.adminKey, nil)
		if strings.Contains(fmt.Sprint(list), secret) {
			t.Fatal("the key list shows a secret")
		}
		e.must(http.StatusNoContent, "DELETE", fmt.Sprint("/api/v1/keys/", keyID), e.adminKey, nil)
		if r := e.call("GET", "/api/v1/customers", secret, nil); r.Code != http.StatusUnauthorized {
			t.Fatalf("revoked key: %d, want 401", r.Code)
		}
		e.must(http.StatusNotFound, "DELETE", fmt.Sprint("/api/v1/keys/", keyID), e.adminKey, nil)
		e.must(http.StatusNotFound, "DELETE", "/api/v1/keys/abc", e.adminKey, nil)

		w := e.must(http.StatusCreated, "POST", "/api/v1/keys", e.adminKey, map[string]any{"kind": "write", "name": "shop"})
		if r := e.call("GET", "/api/v1/customers", w["secret"].(string), nil); r.Code != http.StatusUnauthorized {
			t.Fatalf("new write key on /api: %d, want 401", r.Code)
		}
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"kind": "root"}, "kind"},
			{map[string]any{"kind": "api", "role": "god"}, "role"},
			{map[string]any{"kind": "write", "role": "admin"}, "role"},
		} {
			if r := e.call("POST", "/api/v1/keys", e.adminKey, c.body); r.Code != http.StatusUnprocessableEntity || r.field(t) != c.field {
				t.Errorf("create key %v: %d %s, want 422 on %s", c.body, r.Code, r.Body, c.field)
			}
		}
		if r := e.call("POST", "/api/v1/keys", e.adminKey, map[string]any{"kind": 1}); r.Code != http.StatusBadRequest {
			t.Errorf("kind of the wrong type: %d, want 400", r.Code)
		}
	})
}

func TestAPIStaffAndAttributes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		m := e.must(http.StatusCreated, "POST", "/api/v1/staff", e.adminKey, map[string]any{"login": "lily", "name": "李丽", "role": "sales", "password": "correct horse battery"})
		id := int64(m["id"].(float64))
		if r := e.call("POST", "/api/v1/staff", e.adminKey, map[string]any{"login": "lily", "name": "x", "role": "sales"}); r.Code != http.StatusConflict || r.field(t) != "login" {
			t.Errorf("taken login: %d %s, want 409 on login", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/staff", e.adminKey, map[string]any{"login": "x", "name": "x", "role": "boss"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "role" {
			t.Errorf("bad role: %d %s, want 422 on role", r.Code, r.Body)
		}
		if r := e.call("PATCH", fmt.Sprint("/api/v1/staff/", id), e.adminKey, map[string]any{"department": "华东", "password": "short"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "password" {
			t.Errorf("short password: %d %s, want 422 on password", r.Code, r.Body)
		}
		if got, _ := st.StaffByID(e.ctx, id); got.Department != "" {
			t.Errorf("department %q written by a refused PATCH", got.Department)
		}
		up := e.must(http.StatusOK, "PATCH", fmt.Sprint("/api/v1/staff/", id), e.adminKey, map[string]any{"department": "华东", "disabled": true})
		if up["department"] != "华东" || up["disabled"] != true || up["role"] != "sales" {
			t.Errorf("patched staff %v", up)
		}
		if r := e.call("PATCH", fmt.Sprint("/api/v1/staff/", e.admin.ID), e.adminKey, map[string]any{"role": "sales"}); r.Code != http.StatusUnprocessableEntity {
			t.Errorf("self-demotion: %d, want 422", r.Code)
		}
		e.must(http.StatusNotFound, "PATCH", "/api/v1/staff/99999", e.adminKey, map[string]any{"name": "x"})
		list := e.must(http.StatusOK, "GET", "/api/v1/staff", e.salesKey, nil)
		if n := len(list["staff"].([]any)); n != 4 {
			t.Errorf("%d staff listed, want 4", n)
		}

		e.must(http.StatusCreated, "POST", "/api/v1/attributes", e.opKey, map[string]any{"key": "vip_level", "type": "number", "label": "会员等级"})
		d := e.must(http.StatusOK, "POST", "/api/v1/attributes", e.opKey, map[string]any{"key": "vip_level", "type": "number", "label": "VIP"})
		if d["label"] != "VIP" || d["type"] != "number" {
			t.Errorf("relabelled %v", d)
		}
		if r := e.call("POST", "/api/v1/attributes", e.opKey, map[string]any{"key": "vip_level", "type": "string"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "type" {
			t.Errorf("type change: %d %s, want 422 on type", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/attributes", e.opKey, map[string]any{"key": "bad key!", "type": "string"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "key" {
			t.Errorf("bad key: %d %s, want 422 on key", r.Code, r.Body)
		}
		attrs := e.must(http.StatusOK, "GET", "/api/v1/attributes", e.salesKey, nil)["attributes"].([]any)
		if len(attrs) != 1 || attrs[0].(map[string]any)["key"] != "vip_level" {
			t.Errorf("attributes %v", attrs)
		}
	})
}

func TestAPICreateCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		body := map[string]any{
			"identities": []any{map[string]any{"kind": "user_id", "value": "u-1001"}, map[string]any{"kind": "phone", "value": " 13800001234 "}},
			"name":       "王芳", "gender": "女", "source": "门店海报", "owner": "olivia",
			"attrs":      map[string]any{"city": "上海", "hobbies": []any{"瑜伽", "跑步"}},
			"opt_out":    map[string]any{"sms": true},
			"created_at": "2024-01-02T03:04:05Z",
		}
		r := e.call("POST", "/api/v1/customers", e.opKey, body)
		if r.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Code, r.Body)
		}
		c := r.JSON(t)
		id := int64(c["id"].(float64))
		if r.Header.Get("Location") != fmt.Sprint("/api/v1/customers/", id) {
			t.Errorf("Location %q", r.Header.Get("Location"))
		}
		if c["gender"] != "female" || c["owner"].(map[string]any)["login"] != "olivia" || fmt.Sprint(c["opt_outs"]) != "[sms]" ||
			c["created_at"] != "2024-01-02T03:04:05Z" && !strings.HasPrefix(c["created_at"].(string), "2024-01-02") {
			t.Errorf("created %s", r.Body)
		}
		if len(c["identities"].([]any)) != 2 || len(c["attributes"].([]any)) != 2 {
			t.Errorf("identities or attributes missing: %s", r.Body)
		}
		if got, err := st.CustomerByIdentity(e.ctx, customer.Identity{Kind: customer.PhoneID, Value: "13800001234"}); err != nil || got != id {
			t.Errorf("trimmed phone identity: %d, %v", got, err)
		}
		count := func() int64 {
			n, err := st.CountCustomers(e.ctx, store.CustomerFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// An identity that already belongs to someone is a conflict naming it; nothing is written.
		dup := e.call("POST", "/api/v1/customers", e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "email", "value": "new@example.com"}, map[string]any{"kind": "phone", "value": "13800001234"}}})
		if dup.Code != http.StatusConflict || dup.field(t) != "identities[1]" {
			t.Errorf("duplicate identity: %d %s, want 409 on identities[1]", dup.Code, dup.Body)
		}
		if _, err := st.CustomerByIdentity(e.ctx, customer.Identity{Kind: customer.EmailID, Value: "new@example.com"}); err == nil {
			t.Error("the email of a refused create was stored")
		}
		for _, c := range []struct {
			body  any
			code  int
			field string
		}{
			{map[string]any{"identities": []any{}}, 422, "identities"},
			{map[string]any{"identities": []any{map[string]any{"kind": "qq", "value": "1"}}}, 422, "identities[0].kind"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "  "}}}, 422, "identities[0].value"},
			{map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "a"}, map[string]any{"kind": "user_id", "value": "b"}}}, 422, "identities[1]"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "1"}}, "gender": "robot"}, 422, "gender"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "1"}}, "owner": "nobody"}, 422, "owner"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "1"}}, "birthday": 19900101}, 400, "birthday"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "1"}}, "nickname": "x"}, 400, ""},
			{`{"identities": [`, 400, ""},
		} {
			r := e.call("POST", "/api/v1/customers", e.opKey, c.body)
			if r.Code != c.code || r.field(t) != c.field {
				t.Errorf("create %v: %d %s, want %d on %q", c.body, r.Code, r.Body, c.code, c.field)
			}
		}
		if n := count(); n != 1 {
			t.Errorf("%d customers after refused creates, want 1", n)
		}
		// A sales person's new customer is theirs; naming another owner is refused.
		if r := e.call("POST", "/api/v1/customers", e.salesKey, map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "2"}}, "owner": "olivia"}); r.Code != http.StatusForbidden || r.field(t) != "owner" {
			t.Errorf("sales naming an owner: %d %s, want 403 on owner", r.Code, r.Body)
		}
		own := e.must(http.StatusCreated, "POST", "/api/v1/customers", e.salesKey, map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "2"}}})
		if own["owner_id"] != float64(e.sales.ID) {
			t.Errorf("sales-created customer owned by %v, want %d", own["owner_id"], e.sales.ID)
		}
		// The sales person is not told which customer owns a taken identity outside their scope.
		if r := e.call("POST", "/api/v1/customers", e.salesKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u-1001"}}}); r.Code != http.StatusConflict || strings.Contains(string(r.Body), fmt.Sprint("customer ", id)) {
			t.Errorf("sales duplicate: %d %s", r.Code, r.Body)
		}
	})
}

func TestAPIPatchCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		if err := st.DefineAttr(e.ctx, customer.AttrDef{Key: "x", Type: customer.AttrNumber}); err != nil {
			t.Fatal(err)
		}
		id := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}, "name": "old", "attrs": map[string]any{"x": 1, "gone": "soon"}})
		path := fmt.Sprint("/api/v1/customers/", id)
		unchanged := func(what string) {
			t.Helper()
			c, err := st.Customer(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "old" || c.Attrs["x"] != float64(1) || c.OwnerID != 0 || len(c.OptOuts) != 0 {
				t.Fatalf("%s wrote: %+v", what, c)
			}
		}
		for _, c := range []struct {
			body  any
			code  int
			field string
		}{
			{map[string]any{"name": "new", "attrs": map[string]any{"x": "abc"}}, 422, "attrs.x"},
			{map[string]any{"name": "new", "attrs": map[string]any{"bad key": 1}}, 422, "attrs.bad key"},
			{map[string]any{"name": "new", "opt_out": map[string]any{"carrier_pigeon": true}}, 422, "opt_out.carrier_pigeon"},
			{map[string]any{"name": "new", "owner": "nobody"}, 422, "owner"},
			{map[string]any{"name": "new", "birthday": "last tuesday"}, 422, "birthday"},
			{map[string]any{"name": strings.Repeat("名", 100)}, 422, "name"},
			{map[string]any{"name": 5}, 400, "name"},
			{map[string]any{"opt_out": map[string]any{"sms": "yes"}}, 400, "opt_out"},
			{map[string]any{"identities": []any{map[string]any{"kind": "phone", "value": "1"}}}, 422, "identities"},
			{`{"name": "new"`, 400, ""},
			{`["name"]`, 400, ""},
			{`{"name": "new", "surprise": 1}`, 400, ""},
		} {
			r := e.call("PATCH", path, e.opKey, c.body)
			if r.Code != c.code || r.field(t) != c.field {
				t.Errorf("PATCH %v: %d %s, want %d on %q", c.body, r.Code, r.Body, c.code, c.field)
			}
			unchanged(fmt.Sprint("refused PATCH ", c.body))
		}
		big := `{"name": "` + strings.Repeat("a", apiBodyLimit) + `"}`
		if r := e.call("PATCH", path, e.opKey, big); r.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("2 MB body: %d, want 413", r.Code)
		}
		unchanged("an oversized PATCH")

		out := e.must(http.StatusOK, "PATCH", path, e.opKey, map[string]any{
			"name": "new", "region": "上海", "owner": "sam", "attrs": map[string]any{"x": "42", "gone": nil, "tags": []any{"a"}},
			"opt_out": map[string]any{"sms": true, "email": true},
		})
		if out["name"] != "new" || out["region"] != "上海" || out["owner_id"] != float64(e.sales.ID) || fmt.Sprint(out["opt_outs"]) != "[email sms]" {
			t.Errorf("patched %v", out)
		}
		attrs := out["attrs"].(map[string]any)
		if attrs["x"] != float64(42) || attrs["gone"] != nil || fmt.Sprint(attrs["tags"]) != "[a]" {
			t.Errorf("patched attrs %v", attrs)
		}
		out = e.must(http.StatusOK, "PATCH", path, e.opKey, map[string]any{"owner": "", "opt_out": map[string]any{"sms": false}})
		if out["owner_id"] != float64(0) || out["owner"] != nil || fmt.Sprint(out["opt_outs"]) != "[email]" {
			t.Errorf("unowned and opted back in: %v", out)
		}
		e.must(http.StatusNotFound, "PATCH", "/api/v1/customers/99999", e.opKey, map[string]any{"name": "x"})
		e.must(http.StatusNotFound, "GET", "/api/v1/customers/x1", e.opKey, nil)
	})
}

func TestAPIListCustomersFiltersAndPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		var all []int64
		for i := range 7 {
			body := map[string]any{
				"identities": []any{map[string]any{"kind": "user_id", "value": fmt.Sprint("u", i)}},
				"name":       fmt.Sprintf("客户%d", i), "phone": fmt.Sprint("1380000000", i),
				"source": []string{"门店海报", "小程序"}[i%2],
				"attrs":  map[string]any{"city": []string{"上海", "北京", "广州"}[i%3], "hobbies": []any{"瑜伽", fmt.Sprint("h", i)}},
			}
			if i < 3 {
				body["owner"] = "sam"
			}
			all = append(all, e.create(e.opKey, body))
		}
		list := func(query string) map[string]any {
			t.Helper()
			return e.must(http.StatusOK, "GET", "/api/v1/customers?"+query, e.opKey, nil)
		}
		// Page through everything, two at a time, in both directions.
		for _, order := range []string{"asc", "desc"} {
			var got []int64
			cur := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				v := list("limit=2&order=" + order + "&cursor=" + url.QueryEscape(cur))
				got = append(got, ids(t, v)...)
				next, _ := v["next_cursor"].(string)
				if next == "" {
					break
				}
				cur = next
			}
			if len(got) != 7 || (order == "asc" && got[0] != all[0]) || (order == "desc" && got[0] != all[6]) {
				t.Errorf("order %s paged %v", order, got)
			}
		}
		var byName []int64
		for cur := ""; ; {
			v := list("sort=name&order=desc&limit=3&cursor=" + url.QueryEscape(cur))
			byName = append(byName, ids(t, v)...)
			if cur, _ = v["next_cursor"].(string); cur == "" {
				break
			}
		}
		if fmt.Sprint(byName) != fmt.Sprint([]int64{all[6], all[5], all[4], all[3], all[2], all[1], all[0]}) {
			t.Errorf("by name desc %v", byName)
		}
		for _, c := range []struct {
			query string
			want  []int64
		}{
			{"owner=" + fmt.Sprint(e.sales.ID), all[:3]},
			{"owner=none", all[3:]},
			{"source=" + url.QueryEscape("小程序"), []int64{all[1], all[3], all[5]}},
			{"attr.city=" + url.QueryEscape("上海"), []int64{all[0], all[3], all[6]}},
			{"attr.city=" + url.QueryEscape("上海") + "&source=" + url.QueryEscape("小程序"), []int64{all[3]}},
			{"attr.city=" + url.QueryEscape("上海") + "&attr.hobbies=h6", []int64{all[6]}},
			{"attr.hobbies=" + url.QueryEscape("瑜伽") + "&owner=none&limit=2", all[3:5]},
			{"q=" + url.QueryEscape("客户4"), []int64{all[4]}},
			{"q=13800000005", []int64{all[5]}},
			{"q=u2", []int64{all[2]}},
			{"q=" + url.QueryEscape("客户"), all},
			{"q=nobody", nil},
		} {
			if got := ids(t, list(c.query)); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: %v, want %v", c.query, got, c.want)
			}
		}
		v := list("count=1&owner=none&limit=1")
		if v["total"] != float64(4) || len(v["customers"].([]any)) != 1 {
			t.Errorf("count: %v", v)
		}
		if _, ok := list("limit=1")["total"]; ok {
			t.Error("total without count=1")
		}
		if oo := list("limit=1")["customers"].([]any)[0].(map[string]any)["opt_outs"]; oo == nil {
			t.Error("opt_outs null in the list")
		}
		byName1 := list("sort=name&limit=1")["next_cursor"].(string)
		for _, c := range []struct {
			query string
			code  int
			field string
		}{
			{"limit=abc", 400, "limit"},
			{"limit=0", 422, "limit"},
			{"limit=5000", 422, "limit"},
			{"sort=phone", 422, "sort"},
			{"order=sideways", 422, "order"},
			{"owner=sam", 400, "owner"},
			{"count=maybe", 400, "count"},
			{"ownr=1", 400, "ownr"},
			{"cursor=garbage", 422, "cursor"},
			{"sort=created_at&cursor=" + byName1, 422, "cursor"},
			{"attr.bad%20key=1", 422, "attr.bad key"},
			{"attr.city=a&attr.city=b", 422, "attr.city"},
			{"q=" + strings.Repeat("x", 201), 422, "q"},
		} {
			r := e.call("GET", "/api/v1/customers?"+c.query, e.opKey, nil)
			if r.Code != c.code || r.field(t) != c.field {
				t.Errorf("%s: %d %s, want %d on %q", c.query, r.Code, r.Body, c.code, c.field)
			}
		}
	})
}

func TestAPISalesSeesOnlyOwnCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		mine := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "mine"}}, "owner": "sam", "name": "张三"})
		theirs := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "theirs"}}, "owner": "olivia", "name": "张四"})
		nobodys := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "nobodys"}}, "name": "张五"})
		for _, q := range []string{"", "?q=" + url.QueryEscape("张"), "?owner=none", fmt.Sprint("?owner=", e.operator.ID), "?count=1"} {
			v := e.must(http.StatusOK, "GET", "/api/v1/customers"+q, e.salesKey, nil)
			got := ids(t, v)
			if q == "?owner=none" || strings.HasPrefix(q, "?owner=") {
				if len(got) != 0 {
					t.Errorf("sales %s: %v, want none", q, got)
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint([]int64{mine}) {
				t.Errorf("sales %s: %v, want [%d]", q, got, mine)
			}
			if q == "?count=1" && v["total"] != float64(1) {
				t.Errorf("sales count %v, want 1", v["total"])
			}
		}
		for _, other := range []int64{theirs, nobodys} {
			for _, p := range []string{"", "/events", "/orders"} {
				if r := e.call("GET", fmt.Sprint("/api/v1/customers/", other, p), e.salesKey, nil); r.Code != http.StatusNotFound {
					t.Errorf("sales GET another's customer%s: %d, want 404", p, r.Code)
				}
			}
			if r := e.call("PATCH", fmt.Sprint("/api/v1/customers/", other), e.salesKey, map[string]any{"name": "hijacked"}); r.Code != http.StatusNotFound {
				t.Errorf("sales PATCH another's customer: %d, want 404", r.Code)
			}
		}
		if c, _ := st.Customer(e.ctx, theirs); c.Name != "张四" {
			t.Errorf("another's customer renamed to %q", c.Name)
		}
		e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", mine), e.salesKey, nil)
		e.must(http.StatusOK, "PATCH", fmt.Sprint("/api/v1/customers/", mine), e.salesKey, map[string]any{"region": "杭州"})
		if r := e.call("PATCH", fmt.Sprint("/api/v1/customers/", mine), e.salesKey, map[string]any{"owner": ""}); r.Code != http.StatusForbidden || r.field(t) != "owner" {
			t.Errorf("sales giving a customer away: %d %s, want 403 on owner", r.Code, r.Body)
		}
		// A sales key with no staff member behind it sees nobody.
		_, orphan, _ := st.CreateKey(e.ctx, staff.APIKey, "orphan", staff.Sales, 0)
		if got := ids(t, e.must(http.StatusOK, "GET", "/api/v1/customers", orphan, nil)); len(got) != 0 {
			t.Errorf("orphan sales key sees %v", got)
		}
		// An admin makes a sales key for a sales person: it acts for them, not for the admin.
		made := e.must(http.StatusCreated, "POST", "/api/v1/keys", e.adminKey, map[string]any{"kind": "api", "role": "sales", "staff": "sam"})
		if got := ids(t, e.must(http.StatusOK, "GET", "/api/v1/customers", made["secret"].(string), nil)); fmt.Sprint(got) != fmt.Sprint([]int64{mine}) {
			t.Errorf("sales key made for sam sees %v, want [%d]", got, mine)
		}
		for _, body := range []map[string]any{{"kind": "api", "role": "sales", "staff": "nobody"}, {"kind": "write", "staff": "sam"}} {
			if r := e.call("POST", "/api/v1/keys", e.adminKey, body); r.Code != http.StatusUnprocessableEntity || r.field(t) != "staff" {
				t.Errorf("create key %v: %d %s, want 422 on staff", body, r.Code, r.Body)
			}
		}
	})
}

func TestAPICustomerDetailEventsOrdersAndMerges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		survivor := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}, "owner": "sam"})
		merged := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "anonymous_id", "value": "a1"}}, "name": "匿名"})
		base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		err := st.InTx(e.ctx, func(tx *store.Tx) error {
			var evts []*event.Event
			for i := range 25 {
				evts = append(evts, &event.Event{MessageID: fmt.Sprint("m", i), CustomerID: merged, Type: "track", Name: "Viewed", Timestamp: base.Add(time.Duration(i/2) * time.Minute)})
			}
			if _, err := tx.InsertEvents(evts); err != nil {
				return err
			}
			if _, err := tx.UpsertOrder(&event.Order{OrderID: "SO-1", CustomerID: merged, AmountMinor: 29900, Currency: "CNY", PaidAt: base}); err != nil {
				return err
			}
			return tx.Merge(merged, survivor, "identify")
		})
		if err != nil {
			t.Fatal(err)
		}
		d := e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", survivor), e.salesKey, nil)
		if d["name"] != "匿名" || len(d["identities"].([]any)) != 2 || len(d["merges"].([]any)) != 1 ||
			len(d["recent_events"].([]any)) != 20 || d["events_next_cursor"] == nil || len(d["recent_orders"].([]any)) != 1 {
			t.Errorf("detail %v", d)
		}
		// The merged-away id redirects to its survivor, keeping the rest of the URL.
		r := e.call("GET", fmt.Sprint("/api/v1/customers/", merged, "/events?limit=5"), e.salesKey, nil)
		if r.Code != http.StatusPermanentRedirect || r.Header.Get("Location") != fmt.Sprint("/api/v1/customers/", survivor, "/events?limit=5") || r.JSON(t)["merged_into"] != float64(survivor) {
			t.Errorf("merged: %d %v %s", r.Code, r.Header, r.Body)
		}
		if r := e.call("GET", fmt.Sprint("/api/v1/customers/", merged), e.opKey, nil); r.Code != http.StatusPermanentRedirect {
			t.Errorf("merged detail: %d, want 308", r.Code)
		}
		// A real client follows the 308, PATCH body and all, to the survivor.
		ts := httptest.NewServer(e.h)
		defer ts.Close()
		req, _ := http.NewRequest("PATCH", fmt.Sprint(ts.URL, "/api/v1/customers/", merged), strings.NewReader(`{"region": "杭州"}`))
		req.Header.Set("Authorization", "Bearer "+e.opKey)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if c, _ := st.Customer(e.ctx, survivor); resp.StatusCode != http.StatusOK || c.Region != "杭州" {
			t.Errorf("PATCH through the redirect: %d, survivor region %q", resp.StatusCode, c.Region)
		}
		// A survivor outside the sales scope stays invisible through its old id too.
		e.must(http.StatusOK, "PATCH", fmt.Sprint("/api/v1/customers/", survivor), e.opKey, map[string]any{"owner": "olivia"})
		if r := e.call("GET", fmt.Sprint("/api/v1/customers/", merged), e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Errorf("merged id of another's customer: %d, want 404", r.Code)
		}
		e.must(http.StatusOK, "PATCH", fmt.Sprint("/api/v1/customers/", survivor), e.opKey, map[string]any{"owner": "sam"})
		// Events page exactly, also through equal timestamps.
		seen := map[string]bool{}
		cur := d["events_next_cursor"].(string)
		for _, e0 := range d["recent_events"].([]any) {
			seen[e0.(map[string]any)["message_id"].(string)] = true
		}
		v := e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", survivor, "/events?limit=3&cursor=", url.QueryEscape(cur)), e.salesKey, nil)
		for _, e0 := range v["events"].([]any) {
			mid := e0.(map[string]any)["message_id"].(string)
			if seen[mid] {
				t.Errorf("event %s on two pages", mid)
			}
			seen[mid] = true
		}
		if len(seen) != 23 {
			t.Errorf("%d events after two pages, want 23", len(seen))
		}
		v = e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", survivor, "/events?before=", url.QueryEscape(base.Add(time.Minute).Format(time.RFC3339))), e.salesKey, nil)
		if n := len(v["events"].([]any)); n != 2 {
			t.Errorf("%d events before the second minute, want 2", n)
		}
		if r := e.call("GET", fmt.Sprint("/api/v1/customers/", survivor, "/events?before=yesterday"), e.salesKey, nil); r.Code != http.StatusBadRequest || r.field(t) != "before" {
			t.Errorf("bad before: %d %s", r.Code, r.Body)
		}
		o := e.must(http.StatusOK, "GET", fmt.Sprint("/api/v1/customers/", survivor, "/orders"), e.salesKey, nil)
		if orders := o["orders"].([]any); len(orders) != 1 || orders[0].(map[string]any)["amount_minor"] != float64(29900) {
			t.Errorf("orders %v", o)
		}
	})
}

func TestAPISQLMetacharactersAreVerbatim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		evil := `Robert'); DROP TABLE customers;-- "%_\`
		id := e.create(e.opKey, map[string]any{
			"identities": []any{map[string]any{"kind": "email", "value": `x'OR'1'='1@example.com`}},
			"name":       evil, "source": `' OR 1=1 --`,
			"attrs": map[string]any{"note": `50% off_%`, `a.b-c`: `"quoted"`},
		})
		plain := e.create(e.opKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "plain"}}, "name": "50 percent off"})
		c, err := st.Customer(e.ctx, id)
		if err != nil || c.Name != evil || c.Source != `' OR 1=1 --` || c.Attrs["note"] != `50% off_%` || c.Attrs["a.b-c"] != `"quoted"` {
			t.Fatalf("stored %+v, %v", c, err)
		}
		list := func(query string) []int64 {
			t.Helper()
			return ids(t, e.must(http.StatusOK, "GET", "/api/v1/customers?"+query, e.opKey, nil))
		}
		for _, c := range []struct {
			query string
			want  []int64
		}{
			{"q=" + url.QueryEscape("%"), []int64{id}},
			{"q=" + url.QueryEscape("_"), []int64{id}},
			{"q=" + url.QueryEscape(`\`), []int64{id}},
			{"q=" + url.QueryEscape("' OR '1'='1"), nil},
			{"q=" + url.QueryEscape(`x'OR'1'='1@example.com`), []int64{id}},
			{"q=" + url.QueryEscape("DROP TABLE"), []int64{id}},
			{"source=" + url.QueryEscape(`' OR 1=1 --`), []int64{id}},
			{"attr.note=" + url.QueryEscape(`50% off_%`), []int64{id}},
			{"attr.note=" + url.QueryEscape(`%`), nil},
			{"attr.a.b-c=" + url.QueryEscape(`"quoted"`), []int64{id}},
			{"q=50", []int64{plain}},
		} {
			if got := list(c.query); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: %v, want %v", c.query, got, c.want)
			}
		}
		if n, err := st.CountCustomers(e.ctx, store.CustomerFilter{}); err != nil || n != 2 {
			t.Fatalf("customers table after the queries: %d, %v", n, err)
		}
	})
}
