package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

// quiet drops the handler's logs: refused messages are what these tests send.
var quiet = slog.New(slog.DiscardHandler)

// env is a store, a write key and an ingestion server over them.
type env struct {
	t      *testing.T
	s      *store.Store
	key    string
	srv    *httptest.Server
	counts *counter
}

type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(typ, outcome string) {
	c.mu.Lock()
	c.m[typ+"/"+outcome]++
	c.mu.Unlock()
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func newEnv(t *testing.T, s *store.Store) *env {
	t.Helper()
	_, secret, err := s.CreateKey(ctx, staff.WriteKey, "test source", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{m: map[string]int{}}
	srv := httptest.NewServer(ingest.NewHandler(s, ingest.Options{Count: c.add, Log: quiet}))
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, key: secret, srv: srv, counts: c}
}

// post sends body to path with the write key as basic-auth user and returns status and the
// decoded answer.
func (e *env) post(path, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	req.SetBasicAuth(e.key, "")
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, map[string]any) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s: answer is not JSON: %q", req.URL.Path, b)
		}
	}
	return res.StatusCode, out
}

// mustPost posts and fails the test unless the answer has status want.
func (e *env) mustPost(path, body string, want int) map[string]any {
	e.t.Helper()
	code, out := e.post(path, body)
	if code != want {
		e.t.Fatalf("POST %s: status %d, want %d; answer %v", path, code, want, out)
	}
	return out
}

// count returns the number of rows of a table.
func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// snapshot counts every table ingestion writes, to prove a request wrote nothing.
func (e *env) snapshot() string {
	var b strings.Builder
	for _, t := range []string{"events", "customers", "identities", "orders", "customer_merges", "attribute_defs", "customer_optouts"} {
		fmt.Fprintf(&b, "%s=%d ", t, e.count(t))
	}
	var attrs strings.Builder
	rows, err := e.s.DB().QueryContext(ctx, "SELECT id, name, attrs, last_seen_at FROM customers ORDER BY id")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, seen    int64
			name, attrJ string
		)
		rows.Scan(&id, &name, &attrJ, &seen)
		fmt.Fprintf(&attrs, "%d:%s:%s:%d;", id, name, attrJ, seen)
	}
	return b.String() + attrs.String()
}

// customerOf finds the customer of an identity.
func (e *env) customerOf(kind customer.IdentityKind, v string) *customer.Customer {
	e.t.Helper()
	id, err := e.s.CustomerByIdentity(ctx, customer.Identity{Kind: kind, Value: v})
	if err != nil {
		e.t.Fatalf("customer of %s %q: %v", kind, v, err)
	}
	c, err := e.s.Customer(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestTrackAndIdentifyAreStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		out := e.mustPost("/v1/identify", `{"userId":"u1","messageId":"m-id-1","traits":{"name":"张三","gender":"男","birthday":"1990-05-01","email":"Zhang@Example.com","phone":"+86 138-0000-0000","address":{"state":"广东省","city":"深圳市"},"plan":"pro","logins":3,"vip":true,"hobbies":["跑步","阅读"],"company":{"name":"ACME"},"opt_out":{"sms":true}}}`, 200)
		if out["success"] != true || out["stored"].(float64) != 1 {
			t.Fatalf("answer %v", out)
		}
		c := e.customerOf(customer.UserID, "u1")
		if c.Name != "张三" || c.Gender != "male" || c.Birthday != "1990-05-01" || c.Email != "zhang@example.com" || c.Phone != "13800000000" || c.Region != "广东省 深圳市" {
			t.Fatalf("profile %+v", c)
		}
		if c.Attrs["plan"] != "pro" || c.Attrs["logins"] != 3.0 || c.Attrs["vip"] != true || c.Attrs["company.name"] != "ACME" || fmt.Sprint(c.Attrs["hobbies"]) != "[跑步 阅读]" {
			t.Fatalf("attrs %v", c.Attrs)
		}
		if fmt.Sprint(c.OptOuts) != "[sms]" {
			t.Fatalf("opt-outs %v", c.OptOuts)
		}
		if got := e.customerOf(customer.PhoneID, "13800000000"); got.ID != c.ID {
			t.Fatalf("phone identity names customer %d, want %d", got.ID, c.ID)
		}
		if got := e.customerOf(customer.EmailID, "zhang@example.com"); got.ID != c.ID {
			t.Fatalf("email identity names customer %d, want %d", got.ID, c.ID)
		}

		e.mustPost("/v1/track", `{"userId":"u1","event":"Viewed Product","messageId":"m-tr-1","properties":{"sku":"A-1","price":9.9},"timestamp":"2024-05-01T08:00:00Z"}`, 200)
		e.mustPost("/v1/page", `{"userId":"u1","name":"Home","messageId":"m-pg-1","properties":{"url":"https://example.com/"}}`, 200)
		e.mustPost("/v1/screen", `{"userId":"u1","name":"Cart","messageId":"m-sc-1"}`, 200)
		e.mustPost("/v1/group", `{"userId":"u1","groupId":"g-9","messageId":"m-gr-1","traits":{"name":"ACME"}}`, 200)
		evts, err := s.CustomerEvents(ctx, c.ID, time.Time{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, ev := range evts {
			got[ev.MessageID] = ev.Type + ":" + ev.Name
		}
		want := map[string]string{"m-id-1": "identify:", "m-tr-1": "track:Viewed Product", "m-pg-1": "page:Home", "m-sc-1": "screen:Cart", "m-gr-1": "group:g-9"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("timeline %v, want %v", got, want)
		}
		tr, _ := s.EventByMessageID(ctx, "m-tr-1")
		if tr.Properties["sku"] != "A-1" || tr.Properties["price"] != 9.9 || !tr.Timestamp.Equal(time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("track event %+v", tr)
		}
		if e.counts.get("identify/stored") != 1 || e.counts.get("track/stored") != 1 {
			t.Fatalf("metrics %v", e.counts.m)
		}
	})
}

func TestRetryIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		batch := `{"batch":[
			{"type":"identify","messageId":"r1","anonymousId":"a1","traits":{"visits":1,"name":"Li"}},
			{"type":"track","messageId":"r2","anonymousId":"a1","event":"Order Completed","properties":{"order_id":"o-1","total":100}},
			{"type":"track","messageId":"r3","anonymousId":"a1","event":"Order Refunded","properties":{"order_id":"o-1","total":30}},
			{"type":"track","messageId":"r4","anonymousId":"a1","event":"Clicked"}]}`
		out := e.mustPost("/v1/batch", batch, 200)
		if out["stored"].(float64) != 4 {
			t.Fatalf("first: %v", out)
		}
		// Someone edits the profile in between; a retry must not overwrite it.
		c := e.customerOf(customer.AnonymousID, "a1")
		name := "Li Lei"
		if err := s.UpdateCustomer(ctx, c.ID, &customer.Patch{Name: &name}); err != nil {
			t.Fatal(err)
		}
		before := e.snapshot()
		out = e.mustPost("/v1/batch", batch, 200)
		if out["stored"].(float64) != 0 || out["duplicates"].(float64) != 4 {
			t.Fatalf("retry: %v", out)
		}
		if after := e.snapshot(); after != before {
			t.Fatalf("retry changed the store:\n%s\n%s", before, after)
		}
		o, err := s.Order(ctx, "o-1")
		if err != nil {
			t.Fatal(err)
		}
		if o.AmountMinor != 10000 || o.RefundedMinor != 3000 {
			t.Fatalf("order after retry %+v (refund applied twice?)", o)
		}
		// The same message twice in one batch counts once.
		out = e.mustPost("/v1/batch", `{"batch":[{"type":"track","messageId":"twice","userId":"u","event":"E"},{"type":"track","messageId":"twice","userId":"u","event":"E"}]}`, 200)
		if out["stored"].(float64) != 1 || out["duplicates"].(float64) != 1 {
			t.Fatalf("twice: %v", out)
		}
		if e.counts.get("track/duplicate") != 4 || e.counts.get("identify/duplicate") != 1 {
			t.Fatalf("metrics %v", e.counts.m)
		}
	})
}

func TestIdentifyMergesAnonymousIntoUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.mustPost("/v1/track", `{"anonymousId":"anon-7","event":"Viewed","messageId":"t1"}`, 200)
		e.mustPost("/v1/identify", `{"userId":"u7","traits":{"phone":"13900000007"},"messageId":"i0"}`, 200)
		anon := e.customerOf(customer.AnonymousID, "anon-7")
		user := e.customerOf(customer.UserID, "u7")
		if anon.ID == user.ID {
			t.Fatal("two customers expected before the linking identify")
		}
		e.mustPost("/v1/identify", `{"userId":"u7","anonymousId":"anon-7","messageId":"i1","traits":{"name":"王五"}}`, 200)
		got := e.customerOf(customer.AnonymousID, "anon-7")
		if got.ID != user.ID || got.Name != "王五" || got.Phone != "13900000007" {
			t.Fatalf("after identify: anonymous id names %+v, want customer %d", got, user.ID)
		}
		merged, _ := s.Customer(ctx, anon.ID)
		if merged.MergedInto != user.ID {
			t.Fatalf("customer %d merged into %d, want %d", anon.ID, merged.MergedInto, user.ID)
		}
		ev, _ := s.EventByMessageID(ctx, "t1")
		if ev.CustomerID != user.ID {
			t.Fatalf("event t1 belongs to %d, want %d", ev.CustomerID, user.ID)
		}
		// A message linking by phone (context.externalIds) also merges.
		e.mustPost("/v1/track", `{"anonymousId":"anon-8","event":"Viewed","messageId":"t2","context":{"externalIds":[{"id":"wx-1","type":"wecom_external_userid","collection":"users","encoding":"none"}]}}`, 200)
		e.mustPost("/v1/identify", `{"userId":"u7","messageId":"i2","context":{"externalIds":[{"id":"wx-1","type":"wecom_external_userid"}]}}`, 200)
		if got := e.customerOf(customer.AnonymousID, "anon-8"); got.ID != user.ID {
			t.Fatalf("anon-8 names %d, want %d", got.ID, user.ID)
		}
	})
}

func TestMergeInsideOneBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		// Events of the anonymous visitor come first, the identify that links them later: every
		// event must end on the surviving customer.
		out := e.mustPost("/v1/batch", `{"batch":[
			{"type":"track","messageId":"b1","anonymousId":"x1","event":"A","timestamp":"2024-01-01T00:00:00Z"},
			{"type":"identify","messageId":"b2","userId":"ux","traits":{"name":"X"}},
			{"type":"track","messageId":"b3","anonymousId":"x1","event":"B"},
			{"type":"identify","messageId":"b4","userId":"ux","anonymousId":"x1"},
			{"type":"track","messageId":"b5","anonymousId":"x1","event":"C"}]}`, 200)
		if out["stored"].(float64) != 5 {
			t.Fatalf("answer %v", out)
		}
		user := e.customerOf(customer.UserID, "ux")
		for _, id := range []string{"b1", "b2", "b3", "b4", "b5"} {
			ev, err := s.EventByMessageID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if ev.CustomerID != user.ID {
				t.Errorf("event %s on customer %d, want %d", id, ev.CustomerID, user.ID)
			}
		}
		if user.LastSeenAt.IsZero() {
			t.Error("last seen not set")
		}
	})
}

func TestAlias(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.mustPost("/v1/track", `{"anonymousId":"old-anon","event":"Viewed","messageId":"a1"}`, 200)
		e.mustPost("/v1/alias", `{"previousId":"old-anon","userId":"new-user","messageId":"a2"}`, 200)
		anon := e.customerOf(customer.AnonymousID, "old-anon")
		user := e.customerOf(customer.UserID, "new-user")
		if anon.ID != user.ID {
			t.Fatalf("alias: old-anon names %d, new-user %d", anon.ID, user.ID)
		}
		ev, _ := s.EventByMessageID(ctx, "a2")
		if ev.Type != "alias" || ev.Properties["previousId"] != "old-anon" || ev.CustomerID != user.ID {
			t.Fatalf("alias event %+v", ev)
		}
		// previousId that is an earlier user id of another customer: the two become one.
		e.mustPost("/v1/identify", `{"userId":"legacy-42","traits":{"name":"Old"},"messageId":"a3"}`, 200)
		e.mustPost("/v1/alias", `{"previousId":"legacy-42","userId":"new-user","messageId":"a4"}`, 200)
		if got := e.customerOf(customer.UserID, "legacy-42"); got.ID != user.ID || got.Name != "Old" {
			t.Fatalf("legacy-42 names %+v, want customer %d named Old", got, user.ID)
		}
		// Invalid aliases.
		for _, body := range []string{`{"previousId":"x"}`, `{"userId":"x"}`, `{"userId":"x","previousId":"x"}`} {
			e.mustPost("/v1/alias", body, 400)
		}
	})
}

func TestOrdersAndRefunds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.mustPost("/v1/track", `{"userId":"buyer","event":"Order Completed","messageId":"o1","timestamp":"2024-03-01T10:00:00Z","properties":{
			"order_id":"SO-1001","total":199.5,"currency":"cny","products":[
				{"product_id":"p1","sku":"SKU-1","name":"茶","category":"饮品","price":99.75,"quantity":2}]}}`, 200)
		o, err := s.Order(ctx, "SO-1001")
		if err != nil {
			t.Fatal(err)
		}
		buyer := e.customerOf(customer.UserID, "buyer")
		if o.AmountMinor != 19950 || o.Currency != "CNY" || o.CustomerID != buyer.ID || o.Status != "paid" || len(o.Products) != 1 ||
			o.Products[0].PriceMinor != 9975 || o.Products[0].Quantity != 2 || o.Products[0].SKU != "SKU-1" || !o.PaidAt.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("order %+v", o)
		}
		if ev, err := s.EventByMessageID(ctx, "o1"); err != nil || ev.Name != "Order Completed" {
			t.Fatalf("order event %+v %v", ev, err)
		}
		// revenue when there is no total; numeric order ids keep every digit.
		e.mustPost("/v1/track", `{"userId":"buyer","event":"Order Completed","messageId":"o2","properties":{"order_id":12345678901234567890,"revenue":"20"}}`, 200)
		if o, err := s.Order(ctx, "12345678901234567890"); err != nil || o.AmountMinor != 2000 {
			t.Fatalf("order 2: %+v %v", o, err)
		}
		// Partial, then full refund.
		e.mustPost("/v1/track", `{"userId":"buyer","event":"Order Refunded","messageId":"r1","properties":{"order_id":"SO-1001","total":50}}`, 200)
		o, _ = s.Order(ctx, "SO-1001")
		if o.RefundedMinor != 5000 || o.Status != "partially_refunded" {
			t.Fatalf("after partial refund %+v", o)
		}
		e.mustPost("/v1/track", `{"userId":"buyer","event":"Order Refunded","messageId":"r2","properties":{"order_id":"SO-1001"}}`, 200)
		o, _ = s.Order(ctx, "SO-1001")
		if o.RefundedMinor != 19950 || o.Status != "refunded" {
			t.Fatalf("after full refund %+v", o)
		}
		// A refund of an unknown order is a message error naming the field, and writes nothing.
		before := e.snapshot()
		out := e.mustPost("/v1/track", `{"userId":"buyer","event":"Order Refunded","messageId":"r3","properties":{"order_id":"nope"}}`, 400)
		checkFieldError(t, out, 0, "properties.order_id")
		if after := e.snapshot(); after != before {
			t.Fatalf("refund of unknown order wrote:\n%s\n%s", before, after)
		}
		// Bad order fields.
		for body, field := range map[string]string{
			`{"userId":"b","event":"Order Completed","properties":{"total":5}}`:                                      "properties.order_id",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":"x","total":-5}}`:                      "properties.total",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":"x","total":"abc"}}`:                   "properties.total",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":"x","currency":"yuan"}}`:               "properties.currency",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":"x","products":[{"price":"free"}]}}`:   "properties.products[0].price",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":{"a":1}}}`:                             "properties.order_id",
			`{"userId":"b","event":"Order Completed","properties":{"order_id":"x","products":{"sku":"not a list"}}}`: "properties.products",
		} {
			out := e.mustPost("/v1/track", body, 400)
			checkFieldError(t, out, 0, field)
		}
		if after := e.snapshot(); after != before {
			t.Fatalf("bad orders wrote:\n%s\n%s", before, after)
		}
	})
}

// checkFieldError asserts that an answer lists an error for message index naming field.
func checkFieldError(t *testing.T, out map[string]any, index int, field string) {
	t.Helper()
	errs, _ := out["errors"].([]any)
	for _, e := range errs {
		m := e.(map[string]any)
		if int(m["index"].(float64)) == index && m["field"] == field && m["message"] != "" {
			return
		}
	}
	t.Fatalf("want an error for message %d field %q; answer %v", index, field, out)
}

func TestBatchPartialAndAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		// Decode-level errors (index 1, 3) and a store-level one (index 4: age was a number).
		e.mustPost("/v1/identify", `{"userId":"p0","traits":{"age":30},"messageId":"seed"}`, 200)
		batch := `{"batch":[
			{"type":"track","messageId":"p1","userId":"p1","event":"Ok"},
			{"type":"track","messageId":"p2","userId":"p1","event":5},
			{"type":"identify","messageId":"p3","userId":"p1","traits":{"city":"上海"}},
			{"type":"bogus","messageId":"p4","userId":"p1"},
			{"type":"identify","messageId":"p5","userId":"p1","traits":{"age":"old"}},
			{"type":"track","messageId":"p6","userId":"p1","event":"Ok too"}]}`
		before := e.snapshot()
		out := e.mustPost("/v1/batch?atomic=1", batch, 400)
		checkFieldError(t, out, 1, "event")
		checkFieldError(t, out, 3, "type")
		if after := e.snapshot(); after != before {
			t.Fatalf("atomic batch with invalid messages wrote:\n%s\n%s", before, after)
		}
		// Atomic with only a store-level error: nothing stored either.
		out = e.mustPost("/v1/batch?atomic=1", `{"batch":[
			{"type":"track","messageId":"q1","userId":"q","event":"Ok"},
			{"type":"identify","messageId":"q2","userId":"q","traits":{"age":"old"}},
			{"type":"track","messageId":"q3","userId":"q","event":"Ok"}]}`, 400)
		checkFieldError(t, out, 1, "traits.age")
		if after := e.snapshot(); after != before {
			t.Fatalf("atomic batch with a store-level error wrote:\n%s\n%s", before, after)
		}

		out = e.mustPost("/v1/batch", batch, 200)
		if out["stored"].(float64) != 3 {
			t.Fatalf("partial: %v", out)
		}
		checkFieldError(t, out, 1, "event")
		checkFieldError(t, out, 3, "type")
		checkFieldError(t, out, 4, "traits.age")
		for id, want := range map[string]bool{"p1": true, "p2": false, "p3": true, "p4": false, "p5": false, "p6": true} {
			_, err := s.EventByMessageID(ctx, id)
			if (err == nil) != want {
				t.Errorf("message %s stored=%v, want %v", id, err == nil, want)
			}
		}
		c := e.customerOf(customer.UserID, "p1")
		if c.Attrs["city"] != "上海" || c.Attrs["age"] != nil {
			t.Fatalf("attrs %v", c.Attrs)
		}
		// The invalid messages can be fixed and sent again with the same message ids.
		e.mustPost("/v1/batch", `{"batch":[{"type":"identify","messageId":"p5","userId":"p1","traits":{"age":41}}]}`, 200)
		if c := e.customerOf(customer.UserID, "p1"); c.Attrs["age"] != 41.0 {
			t.Fatalf("age %v", c.Attrs["age"])
		}
		// Atomic refusals: 2 invalid, then 1 store-level; partial: 3 invalid.
		if e.counts.get("track/invalid") != 2 || e.counts.get("unknown/invalid") != 2 || e.counts.get("identify/invalid") != 2 {
			t.Fatalf("invalid messages not counted: %v", e.counts.m)
		}
	})
}

func TestStoreErrorDoesNotUndoNeighbours(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		// Within one batch: message 0 defines "score" as a number, message 1 sends a string, an
		// unknown owner, an unknown refund; the valid messages around them stay.
		out := e.mustPost("/v1/batch", `{"batch":[
			{"type":"identify","messageId":"n0","userId":"n","traits":{"score":1}},
			{"type":"identify","messageId":"n1","userId":"n","traits":{"score":"high"}},
			{"type":"identify","messageId":"n2","userId":"n2","traits":{"owner":"nobody"}},
			{"type":"track","messageId":"n3","userId":"n3","event":"Order Refunded","properties":{"order_id":"none"}},
			{"type":"identify","messageId":"n4","userId":"n4","anonymousId":"an4","traits":{"opt_out":{"pigeon":true}}},
			{"type":"track","messageId":"n5","userId":"n","event":"Fine"}]}`, 200)
		if out["stored"].(float64) != 2 {
			t.Fatalf("answer %v", out)
		}
		checkFieldError(t, out, 1, "traits.score")
		checkFieldError(t, out, 2, "traits.owner")
		checkFieldError(t, out, 3, "properties.order_id")
		checkFieldError(t, out, 4, "traits.opt_out.pigeon")
		if c := e.customerOf(customer.UserID, "n"); c.Attrs["score"] != 1.0 {
			t.Fatalf("score %v", c.Attrs["score"])
		}
		// Rolled-back messages leave no customer behind.
		for _, id := range []customer.Identity{{Kind: customer.UserID, Value: "n2"}, {Kind: customer.AnonymousID, Value: "an4"}} {
			if _, err := s.CustomerByIdentity(ctx, id); err == nil {
				t.Errorf("identity %v of an invalid message was stored", id)
			}
		}
	})
}

func TestBadInputWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		e.mustPost("/v1/identify", `{"userId":"seed","messageId":"seed"}`, 200)
		before := e.snapshot()
		huge := `{"batch":[{"type":"track","userId":"u","event":"` + strings.Repeat("x", 10<<20) + `"}]}`
		cases := []struct {
			name, path, body string
			status           int
			field            string
		}{
			{"malformed JSON", "/v1/track", `{"userId":"u","event":"E"`, 400, ""},
			{"trailing garbage", "/v1/track", `{"userId":"u","event":"E"} x`, 400, ""},
			{"not an object", "/v1/track", `[1,2]`, 400, ""},
			{"empty body", "/v1/track", ``, 400, ""},
			{"wrong type event", "/v1/track", `{"userId":"u","event":["E"]}`, 400, "event"},
			{"wrong type properties", "/v1/track", `{"userId":"u","event":"E","properties":"x"}`, 400, "properties"},
			{"wrong type userId", "/v1/track", `{"userId":{"a":1},"event":"E"}`, 400, "userId"},
			{"wrong type traits", "/v1/identify", `{"userId":"u","traits":[1]}`, 400, "traits"},
			{"wrong type opt_out", "/v1/identify", `{"userId":"u","traits":{"opt_out":{"sms":"yes"}}}`, 400, "traits.opt_out.sms"},
			{"bad timestamp", "/v1/track", `{"userId":"u","event":"E","timestamp":"yesterday"}`, 400, "timestamp"},
			{"bad gender", "/v1/identify", `{"userId":"u","traits":{"gender":"robot"}}`, 400, "traits.gender"},
			{"bad attribute name", "/v1/identify", `{"userId":"u","traits":{"Full Name":"x"}}`, 400, "traits.Full Name"},
			{"no identity", "/v1/track", `{"event":"E"}`, 400, "userId"},
			{"no event", "/v1/track", `{"userId":"u"}`, 400, "event"},
			{"unknown type in batch", "/v1/batch", `{"batch":[{"type":"purchase","userId":"u"}]}`, 400, "type"},
			{"type mismatch", "/v1/track", `{"type":"identify","userId":"u"}`, 400, "type"},
			{"batch not array", "/v1/batch", `{"batch":{"type":"track"}}`, 400, "batch"},
			{"batch missing", "/v1/batch", `{"messages":[]}`, 400, "batch"},
			{"NUL character", "/v1/track", `{"userId":"u","event":"E","properties":{"a":"x\u0000y"}}`, 400, "properties.a"},
			{"number out of range", "/v1/track", `{"userId":"u","event":"E","properties":{"n":1e999999}}`, 400, "properties.n"},
			{"nested too deep", "/v1/track", `{"userId":"u","event":"E","properties":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, 400, "properties.a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"},
			{"invalid UTF-8", "/v1/track", "{\"userId\":\"u\",\"event\":\"E\xff\xfe\"}", 400, "event"},
			{"invalid UTF-8 in batch", "/v1/batch", "{\"batch\":[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"\xc3\x28\"}]}", 400, "event"},
			{"too many messages", "/v1/batch", `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"E"},`, 2501), ",") + `]}`, 400, "batch"},
			{"message too large", "/v1/track", `{"userId":"u","event":"E","properties":{"x":"` + strings.Repeat("y", 33<<10) + `"}}`, 413, ""},
			{"10 MB body", "/v1/batch", huge, 413, ""},
			{"unknown endpoint", "/v1/purchase", `{}`, 404, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, out := e.post(c.path, c.body)
				if code != c.status {
					t.Fatalf("status %d, want %d; answer %v", code, c.status, out)
				}
				if _, ok := out["error"].(map[string]any); !ok {
					t.Fatalf("no error object in %v", out)
				}
				if c.field != "" {
					got := ""
					if errs, ok := out["errors"].([]any); ok && len(errs) > 0 {
						got, _ = errs[0].(map[string]any)["field"].(string)
					} else {
						got, _ = out["error"].(map[string]any)["field"].(string)
					}
					if got != c.field {
						t.Fatalf("field %q, want %q; answer %v", got, c.field, out)
					}
				}
			})
		}
		if after := e.snapshot(); after != before {
			t.Fatalf("bad input wrote:\n%s\n%s", before, after)
		}
	})
}

func TestHugeBodyRefusedWithoutReadingIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		// A body that never ends: the answer must come from Content-Length alone.
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() {
			pw.Write([]byte(`{"batch":[`))
		}()
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/batch", pr)
		req.ContentLength = 10 << 20
		req.SetBasicAuth(e.key, "")
		code, out := e.do(req)
		if code != 413 {
			t.Fatalf("status %d, want 413; %v", code, out)
		}
		// Chunked (no Content-Length): refused once the limit is passed.
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", io.LimitReader(zeros{}, 10<<20))
		req.SetBasicAuth(e.key, "")
		code, _ = e.do(req)
		if code != 413 {
			t.Fatalf("chunked: status %d, want 413", code)
		}
		if n := e.count("events"); n != 0 {
			t.Fatalf("%d events stored", n)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestWriteKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		body := `{"userId":"u","event":"E"}`
		// Unknown key, no key.
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/track", strings.NewReader(body))
		req.SetBasicAuth("wk_unknown", "")
		if code, out := e.do(req); code != 401 || out["error"] == nil {
			t.Fatalf("unknown key: %d %v", code, out)
		}
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/track", strings.NewReader(body))
		if code, _ := e.do(req); code != 401 {
			t.Fatalf("no key: %d", code)
		}
		// An API key is not a write key.
		_, apiSecret, _ := s.CreateKey(ctx, staff.APIKey, "api", staff.Admin, 0)
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/track", strings.NewReader(body))
		req.SetBasicAuth(apiSecret, "")
		if code, _ := e.do(req); code != 401 {
			t.Fatalf("api key accepted for ingestion: %d", code)
		}
		// Unknown key in the body.
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", strings.NewReader(`{"writeKey":"wk_nope","batch":[{"type":"track","userId":"u","event":"E"}]}`))
		if code, _ := e.do(req); code != 401 {
			t.Fatalf("unknown body key: %d", code)
		}
		if n := e.count("events"); n != 0 {
			t.Fatalf("unauthenticated requests stored %d events", n)
		}
		// writeKey in the body, as Segment's HTTP API accepts.
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", strings.NewReader(`{"writeKey":"`+e.key+`","batch":[{"type":"track","userId":"u","event":"E"}]}`))
		if code, out := e.do(req); code != 200 {
			t.Fatalf("body key: %d %v", code, out)
		}
		// Basic auth with a password (some SDKs send one) still names the key by its user.
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/track", strings.NewReader(body))
		req.SetBasicAuth(e.key, "ignored")
		if code, _ := e.do(req); code != 200 {
			t.Fatalf("key with password: %d", code)
		}
	})
}

func TestRevokedKeyStopsWorking(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		k, secret, err := s.CreateKey(ctx, staff.WriteKey, "src", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ingest.NewHandler(s, ingest.Options{KeyCacheTTL: time.Millisecond, Log: quiet}))
		defer srv.Close()
		send := func() int {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/track", strings.NewReader(`{"userId":"u","event":"E"}`))
			req.SetBasicAuth(secret, "")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if code := send(); code != 200 {
			t.Fatalf("before revoking: %d", code)
		}
		if err := s.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		// The cache entry lives 1ms; poll (bounded) instead of sleeping a fixed time.
		deadline := time.Now().Add(5 * time.Second)
		for send() != 401 {
			if time.Now().After(deadline) {
				t.Fatal("revoked key still accepted after 5s")
			}
		}
	})
}

func TestSQLMetaCharactersStoredVerbatim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		nasty := `Robert'); DROP TABLE events;-- "quoted" \ backslash ? $1 %s ; /* comment */`
		q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
		e.mustPost("/v1/identify", `{"userId":`+q(nasty)+`,"messageId":`+q("mid-"+nasty)+`,"traits":{"name":`+q(nasty)+`,"note'x":`+q(nasty)+`}}`, 400) // the attribute key is invalid
		e.mustPost("/v1/identify", `{"userId":`+q(nasty)+`,"messageId":`+q("mid-"+nasty)+`,"traits":{"name":`+q(nasty)+`,"note":`+q(nasty)+`}}`, 200)
		e.mustPost("/v1/track", `{"userId":`+q(nasty)+`,"messageId":`+q("t-"+nasty)+`,"event":`+q(nasty)+`,"properties":{`+q(nasty)+`:`+q(nasty)+`}}`, 200)
		e.mustPost("/v1/track", `{"userId":`+q(nasty)+`,"messageId":`+q("o-"+nasty)+`,"event":"Order Completed","properties":{"order_id":`+q(nasty)+`,"total":1}}`, 200)
		c := e.customerOf(customer.UserID, nasty)
		if c.Name != nasty || c.Attrs["note"] != nasty {
			t.Fatalf("customer %+v", c)
		}
		ev, err := s.EventByMessageID(ctx, "t-"+nasty)
		if err != nil || ev.Name != nasty || ev.Properties[nasty] != nasty {
			t.Fatalf("event %+v %v", ev, err)
		}
		if o, err := s.Order(ctx, nasty); err != nil || o.CustomerID != c.ID {
			t.Fatalf("order %+v %v", o, err)
		}
		if n := e.count("events"); n != 3 {
			t.Fatalf("%d events", n)
		}
	})
}

func TestGzipBodies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		gz := func(b []byte) *bytes.Buffer {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			return &buf
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/batch", gz([]byte(`{"batch":[{"type":"track","userId":"g","event":"Zipped","messageId":"z1"}]}`)))
		req.SetBasicAuth(e.key, "")
		req.Header.Set("Content-Encoding", "gzip")
		if code, out := e.do(req); code != 200 {
			t.Fatalf("gzip: %d %v", code, out)
		}
		// A zip bomb: 20 MB of spaces compress to ~20 KB; refused at the decompressed limit.
		bomb := gz(bytes.Repeat([]byte(" "), 20<<20))
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", bomb)
		req.SetBasicAuth(e.key, "")
		req.Header.Set("Content-Encoding", "gzip")
		if code, _ := e.do(req); code != 413 {
			t.Fatalf("gzip bomb: %d, want 413", code)
		}
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", strings.NewReader("not gzip"))
		req.SetBasicAuth(e.key, "")
		req.Header.Set("Content-Encoding", "gzip")
		if code, _ := e.do(req); code != 400 {
			t.Fatalf("bad gzip: %d, want 400", code)
		}
		req, _ = http.NewRequest("POST", e.srv.URL+"/v1/batch", strings.NewReader("{}"))
		req.SetBasicAuth(e.key, "")
		req.Header.Set("Content-Encoding", "br")
		if code, _ := e.do(req); code != 415 {
			t.Fatalf("brotli: %d, want 415", code)
		}
		if n := e.count("events"); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
	})
}

func TestTimestampsCorrectClockSkew(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		e := newEnv(t, s)
		// The client's clock is 1 hour fast: it says it sent at 13:00 an event of 12:50.
		e.mustPost("/v1/batch", `{"sentAt":"2024-06-01T13:00:00Z","batch":[
			{"type":"track","userId":"c","event":"E","messageId":"s1","timestamp":"2024-06-01T12:50:00Z"},
			{"type":"track","userId":"c","event":"E","messageId":"s2","originalTimestamp":"2024-06-01T12:40:00Z","sentAt":"2024-06-01T12:45:00Z"},
			{"type":"track","userId":"c","event":"E","messageId":"s3"}]}`, 200)
		want := map[string]time.Time{"s1": now.Add(-10 * time.Minute), "s2": now.Add(-5 * time.Minute), "s3": now}
		for id, w := range want {
			ev, err := s.EventByMessageID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Timestamp.Equal(w) || !ev.ReceivedAt.Equal(now) {
				t.Errorf("%s: timestamp %v received %v, want %v and %v", id, ev.Timestamp.UTC(), ev.ReceivedAt.UTC(), w, now)
			}
		}
		// Without sentAt a timestamp is taken as is (historical import).
		e.mustPost("/v1/track", `{"userId":"c","event":"E","messageId":"s4","timestamp":"2020-01-02T03:04:05.678+08:00"}`, 200)
		ev, _ := s.EventByMessageID(ctx, "s4")
		if !ev.Timestamp.Equal(time.Date(2020, 1, 1, 19, 4, 5, 678e6, time.UTC)) {
			t.Fatalf("s4 timestamp %v", ev.Timestamp.UTC())
		}
		// Last seen never moves past the time of receipt.
		e.mustPost("/v1/track", `{"userId":"future","event":"E","messageId":"s5","timestamp":"2030-01-01T00:00:00Z"}`, 200)
		if c := e.customerOf(customer.UserID, "future"); !c.LastSeenAt.Equal(now) {
			t.Fatalf("last seen %v, want %v", c.LastSeenAt, now)
		}
	})
}

func TestConcurrentRequestsShareCommits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		const workers, perWorker = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					body := fmt.Sprintf(`{"batch":[{"type":"identify","userId":"cu%d","anonymousId":"ca%d-%d","messageId":"cm-%d-%d-i","traits":{"n":%d}},{"type":"track","userId":"cu%d","event":"E","messageId":"cm-%d-%d-t"}]}`, i, w, i, w, i, i, i, w, i)
					req, _ := http.NewRequest("POST", e.srv.URL+"/v1/batch", strings.NewReader(body))
					req.SetBasicAuth(e.key, "")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						errs <- fmt.Errorf("status %d: %s", res.StatusCode, b)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := e.count("events"); n != workers*perWorker*2 {
			t.Fatalf("%d events, want %d", n, workers*perWorker*2)
		}
		// Every user id is one customer holding all its anonymous ids.
		for i := 0; i < perWorker; i++ {
			c := e.customerOf(customer.UserID, fmt.Sprintf("cu%d", i))
			ids, _ := s.Identities(ctx, c.ID)
			if len(ids) != workers+1 {
				t.Fatalf("cu%d has identities %v", i, ids)
			}
		}
	})
}

func TestCORSPreflight(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		req, _ := http.NewRequest("OPTIONS", e.srv.URL+"/v1/t", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight %d %v", res.StatusCode, res.Header)
		}
	})
}

func TestLastSeenKeptToTheMinute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		e := newEnv(t, s)
		send := func(id string, ago time.Duration) time.Time {
			t.Helper()
			ts := now.Add(-ago).Format(time.RFC3339)
			e.mustPost("/v1/track", `{"userId":"ls","event":"E","messageId":"`+id+`","timestamp":"`+ts+`"}`, 200)
			return e.customerOf(customer.UserID, "ls").LastSeenAt
		}
		if got := send("l1", 10*time.Minute); !got.Equal(now.Add(-10 * time.Minute)) {
			t.Fatalf("first: %v", got)
		}
		if got := send("l2", 9*time.Minute+30*time.Second); !got.Equal(now.Add(-10 * time.Minute)) {
			t.Fatalf("30s later: %v, want unchanged", got)
		}
		if got := send("l3", 20*time.Minute); !got.Equal(now.Add(-10 * time.Minute)) {
			t.Fatalf("older event: %v, want unchanged", got)
		}
		if got := send("l4", 5*time.Minute); !got.Equal(now.Add(-5 * time.Minute)) {
			t.Fatalf("5 minutes later: %v", got)
		}
	})
}
