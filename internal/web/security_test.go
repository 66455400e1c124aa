package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestSecurityHeadersOnEveryAnswer checks the headers on console, API, ingestion, static,
// callback and not-found answers, and HSTS only over TLS.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newAPIEnv(t, st)
	for _, tc := range []struct {
		method, path, key string
		body              string
	}{
		{"GET", "/login", "", ""},
		{"GET", "/", "", ""},
		{"GET", "/customers", "", ""},
		{"GET", "/api/v1/me", e.adminKey, ""},
		{"GET", "/api/v1/me", "", ""},
		{"GET", "/api/v1/openapi.json", "", ""},
		{"POST", "/v1/track", "", `{"event":"x","userId":"u"}`},
		{"GET", "/static/app.css", "", ""},
		{"GET", "/wecom/callback", "", ""},
		{"GET", "/no/such/page", "", ""},
		{"GET", "/healthz", "", ""},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := e.call(tc.method, tc.path, tc.key, body)
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s (%d): CSP %q lacks %q", tc.method, tc.path, r.Code, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s %s: CSP allows inline script: %q", tc.method, tc.path, csp)
		}
		for name, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if got := h.Get(name); got != want {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, name, got, want)
			}
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s %s: HSTS over plain HTTP", tc.method, tc.path)
		}
	}
	// Over TLS (or behind a trusted proxy that says so) HSTS is sent.
	req := httptest.NewRequest("GET", "https://crm.example.com/login", nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Header().Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS over TLS: %v", rec.Header())
	}
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler), Security: SecurityConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	h := srv.Handler()
	for _, tc := range []struct {
		remote string
		want   bool
	}{{"10.1.2.3:5000", true}, {"203.0.113.9:5000", false}} {
		req := httptest.NewRequest("GET", "/login", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Forwarded-Proto", "https")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tc.want {
			t.Errorf("X-Forwarded-Proto from %s: HSTS %v, want %v", tc.remote, got, tc.want)
		}
	}
}

// TestTemplatesHaveNoInlineScript keeps the CSP honest: no inline <script>, no on* handler
// attribute, no javascript: URL in any console template.
func TestTemplatesHaveNoInlineScript(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	handler := regexp.MustCompile(`(?i)\s on[a-z]+\s*=`)
	jsURL := regexp.MustCompile(`(?i)javascript:`)
	n := 0
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, _ := fs.ReadFile(templateFS, p)
		src := string(b)
		for _, tag := range inline.FindAllString(src, -1) {
			if !strings.Contains(tag, "src=") {
				t.Errorf("%s: inline script %s", p, tag)
			}
		}
		if loc := handler.FindStringIndex(src); loc != nil {
			t.Errorf("%s: event handler attribute near %q", p, src[loc[0]:min(len(src), loc[1]+30)])
		}
		if jsURL.MatchString(src) {
			t.Errorf("%s: javascript: URL", p)
		}
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d templates: %v", n, err)
	}
}

// TestConsolePostsNeedCSRF posts to every state-changing console route, signed in, without
// the token: each must refuse with 403 and change nothing. The sign-in forms (no session yet)
// are covered by the cross-origin check instead.
func TestConsolePostsNeedCSRF(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler)}
	h := srv.Handler()
	admin := consoleSignIn(t, st, "wang", staff.Admin)
	before, _ := st.ListAudit(context.Background(), store.AuditQuery{})
	posts := 0
	for _, pattern := range srv.consoleRoutes {
		method, path, _ := strings.Cut(pattern, " ")
		if method != http.MethodPost {
			continue
		}
		target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "1")
		form := url.Values{"name": {"x"}, "confirm": {"yes"}}
		req := httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if target == "/login" || target == "/login/2fa" {
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		} else {
			req.AddCookie(admin.Cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("POST %s without a CSRF token: %d, want 403", target, rec.Code)
		}
		posts++
	}
	if posts < 15 {
		t.Fatalf("only %d console POST routes found", posts)
	}
	after, _ := st.ListAudit(context.Background(), store.AuditQuery{})
	if len(after.Entries) != len(before.Entries) {
		t.Fatalf("a refused post was audited as done: %+v", after.Entries)
	}
}

// TestClientIPBehindTrustedProxy: X-Forwarded-For is believed only from a trusted proxy, and
// only its right-most untrusted hop.
func TestClientIPBehindTrustedProxy(t *testing.T) {
	srv := &Server{Security: SecurityConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, tc := range []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},              // not a proxy: the header is the client's word
		{"10.0.0.2:1234", "198.51.100.7", "198.51.100.7"},           // nginx in front
		{"10.0.0.2:1234", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // the client's own prefix is ignored
		{"10.0.0.2:1234", "198.51.100.7, 10.0.0.3", "198.51.100.7"}, // two proxies
		{"10.0.0.2:1234", "garbage", "10.0.0.2"},
		{"[::1]:1234", "2001:db8::1", "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := srv.clientIP(r); got != tc.want {
			t.Errorf("%s + XFF %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// TestKeyedLimiterRefillsAndForgets drives the limiter with a fake clock.
func TestKeyedLimiterRefillsAndForgets(t *testing.T) {
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	l := newKeyedLimiter(2, 3) // 2 per second, burst 3
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after the wait it announced")
	}
	l.max = 2
	now = now.Add(time.Hour)
	l.Allow("c")
	if len(l.buckets) > 2 {
		t.Fatalf("idle buckets kept: %d", len(l.buckets))
	}
}

// TestIngestLimitsPerWriteKey: a write key over its rate gets 429 with Retry-After while
// another key goes on; an expired key is refused with 401 saying so.
func TestIngestLimitsPerWriteKey(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler), Security: SecurityConfig{IngestRate: 1, IngestBurst: 2}}
	h := srv.Handler()
	srv.ingestLimiter.now = func() time.Time { return now }
	_, a, _ := st.CreateKey(context.Background(), staff.WriteKey, "shop", "", 0)
	_, b, _ := st.CreateKey(context.Background(), staff.WriteKey, "app", "", 0)
	send := func(key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/track", strings.NewReader(`{"event":"viewed","userId":"u1"}`))
		req.SetBasicAuth(key, "")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 2 {
		if rec := send(a); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := send(a)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "rate_limited") {
		t.Fatalf("over the rate: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := send(b); rec.Code != http.StatusOK {
		t.Fatalf("another key was throttled: %d", rec.Code)
	}
	now = now.Add(time.Second)
	if rec := send(a); rec.Code != http.StatusOK {
		t.Fatalf("after a second: %d", rec.Code)
	}

	_, c, err := st.CreateKeyWith(context.Background(), store.KeySpec{Kind: staff.WriteKey, Name: "campaign", ExpiresAt: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := send(c); rec.Code != http.StatusOK {
		t.Fatalf("before expiry: %d", rec.Code)
	}
	now = now.Add(time.Hour)
	if rec := send(c); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "key_expired") {
		t.Fatalf("expired write key: %d %s", rec.Code, rec.Body)
	}
}

// TestPublicPagesAreLimited: limitPublic answers 429 with Retry-After per client address.
func TestPublicPagesAreLimited(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler), Security: SecurityConfig{PublicRate: 1, PublicBurst: 2}}
	srv.Handler()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	srv.publicLimiter.now = func() time.Time { return now }
	var bodyErr error
	h := srv.limitPublic(func(w http.ResponseWriter, r *http.Request) {
		_, bodyErr = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	call := func(ip string, body string) int {
		req := httptest.NewRequest("POST", "/s/abc", strings.NewReader(body))
		req.RemoteAddr = ip + ":4000"
		rec := httptest.NewRecorder()
		h(rec, req)
		if rec.Code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return rec.Code
	}
	var got []int
	for range 3 {
		got = append(got, call("1.1.1.1", ""))
	}
	if fmt.Sprint(got) != "[204 204 429]" {
		t.Fatalf("three requests with a burst of 2: %v", got)
	}
	if call("2.2.2.2", "") != 204 {
		t.Fatal("another address was throttled")
	}
	call("3.3.3.3", strings.Repeat("x", publicBodyLimit+1))
	if bodyErr == nil {
		t.Fatal("a public body over the limit was read whole")
	}
}

// TestRequestBodyLimits: every surface refuses an oversized body with 413.
func TestRequestBodyLimits(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newAPIEnv(t, st)
	admin := &consoleUser{Cookie: &http.Cookie{Name: SessionCookie, Value: e.sessionToken}, CSRF: e.sessionCSRF}
	big := func(n int) string { return strings.Repeat("a", n) }
	// API JSON: 1 MB.
	if r := e.call("POST", "/api/v1/customers", e.adminKey, `{"name":"`+big(apiBodyLimit)+`"}`); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("API body over 1 MB: %d", r.Code)
	}
	// Console form: 1 MB.
	form := url.Values{"csrf": {admin.CSRF}, "name": {big(consoleFormLimit)}}
	req := httptest.NewRequest("POST", "/settings/keys", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(admin.Cookie)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("console form over 1 MB: %d", rec.Code)
	}
	// Ingestion: 32 KB a message, 500 KB a batch.
	for path, n := range map[string]int{"/v1/track": 40 << 10, "/v1/batch": 600 << 10} {
		req := httptest.NewRequest("POST", path, strings.NewReader(`{"event":"`+big(n)+`"}`))
		req.SetBasicAuth("wk_x", "")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s over its limit: %d", path, rec.Code)
		}
	}
	// WeCom callback: 64 KB (once WeCom is set up; before, it answers 503 without reading).
	for k, v := range map[string]string{"wecom.corp_id": "ww1", "wecom.token": "tok", "wecom.encoding_aes_key": strings.Repeat("k", 43)} {
		if err := st.SetSetting(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	req = httptest.NewRequest("POST", fmt.Sprintf("/wecom/callback?msg_signature=a&timestamp=%d&nonce=n", time.Now().Unix()), strings.NewReader(big(65<<10)))
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("WeCom callback over 64 KB: %d", rec.Code)
	}
	// The backstop: a declared length over 32 MB anywhere is refused before reading.
	req = httptest.NewRequest("POST", "/api/v1/tags/assign", strings.NewReader("{}"))
	req.ContentLength = maxRequestBody + 1
	req.Header.Set("Authorization", "Bearer "+e.adminKey)
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 32 MB body: %d", rec.Code)
	}
}

// TestAPIKeyScopesAndExpiry: a read key cannot write, a write key cannot administer, an
// expired key is 401 with a clear message; bad scopes and expiries are 422 naming the field.
func TestAPIKeyScopesAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		mk := func(body map[string]any) string {
			return e.must(http.StatusCreated, "POST", "/api/v1/keys", e.adminKey, body)["secret"].(string)
		}
		read := mk(map[string]any{"kind": "api", "role": "operator", "scope": "read", "name": "BI"})
		write := mk(map[string]any{"kind": "api", "role": "admin", "scope": "write", "name": "sync"})
		adm := mk(map[string]any{"kind": "api", "role": "admin", "scope": "admin", "name": "ops", "expires_at": now.Add(48 * time.Hour).Format(time.RFC3339)})
		customer := map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "u1"}}}
		if r := e.call("GET", "/api/v1/customers", read, nil); r.Code != 200 {
			t.Fatalf("read key GET: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/customers", read, customer); r.Code != 403 || !strings.Contains(string(r.Body), `"scope"`) {
			t.Fatalf("read key POST: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/customers", write, customer); r.Code != 201 {
			t.Fatalf("write key POST: %d %s", r.Code, r.Body)
		}
		if r := e.call("GET", "/api/v1/audit", write, nil); r.Code != 200 {
			t.Fatalf("write admin-role key reading the audit log: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/keys", write, map[string]any{"kind": "write"}); r.Code != 403 {
			t.Fatalf("write key making a key: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/keys", adm, map[string]any{"kind": "write"}); r.Code != 201 {
			t.Fatalf("admin key making a key: %d %s", r.Code, r.Body)
		}
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"kind": "api", "role": "operator", "scope": "admin"}, "scope"},
			{map[string]any{"kind": "api", "scope": "everything"}, "scope"},
			{map[string]any{"kind": "api", "expires_at": now.Add(-time.Hour).Format(time.RFC3339)}, "expires_at"},
		} {
			if r := e.call("POST", "/api/v1/keys", e.adminKey, tc.body); r.Code != 422 || r.field(t) != tc.field {
				t.Errorf("%v: %d %s", tc.body, r.Code, r.Body)
			}
		}
		keys := e.must(200, "GET", "/api/v1/keys", e.adminKey, nil)["keys"].([]any)
		scopes := map[string]bool{}
		for _, k := range keys {
			scopes[fmt.Sprint(k.(map[string]any)["scope"])] = true
		}
		if !scopes["read"] || !scopes["write"] || !scopes["admin"] {
			t.Fatalf("scopes in the key list: %v", scopes)
		}
		now = now.Add(48 * time.Hour)
		r := e.call("GET", "/api/v1/me", adm, nil)
		if r.Code != 401 || !strings.Contains(string(r.Body), "key_expired") || !strings.Contains(string(r.Body), "expired at") {
			t.Fatalf("expired key: %d %s", r.Code, r.Body)
		}
	})
}

// TestPasswordPolicyOverHTTP: the policy's refusals are 422 naming password, on the API and
// the console, and nothing is written.
func TestPasswordPolicyOverHTTP(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newAPIEnv(t, st)
	for _, pw := range []string{"short", "1234567890", "liuyang2024!", "aaaaaaaaaaaa"} {
		r := e.call("POST", "/api/v1/staff", e.adminKey, map[string]any{"login": "liuyang", "name": "刘洋", "role": "sales", "password": pw})
		if r.Code != 422 || r.field(t) != "password" {
			t.Errorf("password %q: %d %s", pw, r.Code, r.Body)
		}
	}
	if _, err := st.StaffByLogin(context.Background(), "liuyang"); err == nil {
		t.Fatal("a refused password created the account")
	}
	r := e.call("PATCH", fmt.Sprint("/api/v1/staff/", e.sales.ID), e.adminKey, map[string]any{"password": "password123", "department": "华东"})
	if r.Code != 422 || r.field(t) != "password" || !strings.Contains(string(r.Body), "common") {
		t.Fatalf("common password on PATCH: %d %s", r.Code, r.Body)
	}
	if m, _ := st.StaffByID(context.Background(), e.sales.ID); m.Department == "华东" {
		t.Fatal("a refused PATCH changed the department")
	}
}

// signInForm posts the sign-in form from addr with a browser's user agent.
func signInForm(h http.Handler, login, password, addr string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"login": {login}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0) 企业微信")
	req.RemoteAddr = addr
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func cookieOf(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.MaxAge >= 0 && c.Value != "" {
			return c
		}
	}
	return nil
}

// TestTwoFactorSignIn: with two-factor on, the password gives only a pending session; the
// code (once) or a recovery code (once) completes it; failures are audited.
func TestTwoFactorSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
		st.SetClock(func() time.Time { return now })
		srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler)}
		h := srv.Handler()
		m := &staff.Staff{Login: "chen", Name: "陈静", Role: staff.Operator}
		if err := st.CreateStaff(ctx, m, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		enr, _ := staff.NewTOTP("siyu", "chen")
		st.BeginTOTP(ctx, m.ID, enr.Secret)
		code := func() string { c, _ := totp.GenerateCode(enr.Secret, now); return c }
		codes, err := st.ConfirmTOTP(ctx, m.ID, code(), nil)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)

		rec := signInForm(h, "chen", "correct horse battery", "198.51.100.4:3000")
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login/2fa") {
			t.Fatalf("password step: %d %v", rec.Code, rec.Header())
		}
		if cookieOf(rec, SessionCookie) != nil {
			t.Fatal("a session cookie before the second factor")
		}
		pending := cookieOf(rec, pendingCookie)
		if pending == nil || pending.Path != "/login" || !pending.HttpOnly {
			t.Fatalf("pending cookie: %+v", pending)
		}
		// The pending token is no session.
		req := httptest.NewRequest("GET", "/customers", nil)
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: pending.Value})
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		if rr.Code != http.StatusSeeOther {
			t.Fatalf("pending token used as a session: %d", rr.Code)
		}
		second := func(c string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/login/2fa", strings.NewReader(url.Values{"code": {c}, "next": {"/customers"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = "198.51.100.4:3000"
			req.AddCookie(pending)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		if rec := second("000000"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong code: %d", rec.Code)
		}
		rec = second(code())
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/customers" || cookieOf(rec, SessionCookie) == nil {
			t.Fatalf("right code: %d %v", rec.Code, rec.Header())
		}
		if rec := second(code()); rec.Code == http.StatusSeeOther && cookieOf(rec, SessionCookie) != nil {
			t.Fatal("the pending sign-in completed twice")
		}
		// A recovery code, once.
		now = now.Add(time.Minute)
		rec = signInForm(h, "chen", "correct horse battery", "198.51.100.4:3000")
		pending = cookieOf(rec, pendingCookie)
		if rec := second(codes[0]); rec.Code != http.StatusSeeOther || cookieOf(rec, SessionCookie) == nil {
			t.Fatalf("recovery code: %d", rec.Code)
		}
		rec = signInForm(h, "chen", "correct horse battery", "198.51.100.4:3000")
		pending = cookieOf(rec, pendingCookie)
		if rec := second(codes[0]); rec.Code != http.StatusUnauthorized {
			t.Fatalf("a recovery code spent twice: %d", rec.Code)
		}
		p, _ := st.ListAudit(ctx, store.AuditQuery{Action: "auth"})
		var got []string
		for _, e := range p.Entries {
			got = append(got, fmt.Sprintf("%s/%v %v", e.Action, e.Detail["factors"], e.Detail["reason"]))
		}
		want := []string{
			"auth.sign_in_failed/<nil> second_factor", "auth.sign_in/password+recovery_code <nil>", "auth.recovery_code/<nil> <nil>",
			"auth.sign_in/password+totp <nil>", "auth.sign_in_failed/<nil> second_factor",
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("audit:\n got %v\nwant %v", got, want)
		}
	})
}

// TestSessionIdleExpiryAndRevocation: an idle session ends; sign out everywhere and an admin's
// revoke end every session of the person; disabling does too.
func TestSessionIdleExpiryAndRevocation(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler), Security: SecurityConfig{SessionIdle: 30 * time.Minute, SessionMax: 8 * time.Hour}}
	e := &consoleEnv{t: t, st: st, h: srv.Handler()}
	m := &staff.Staff{Login: "zhao", Name: "赵敏", Role: staff.Sales}
	st.CreateStaff(ctx, m, "correct horse battery")
	login := func() *consoleUser {
		rec := signInForm(e.h, "zhao", "correct horse battery", "192.0.2.1:1000")
		c := cookieOf(rec, SessionCookie)
		if c == nil {
			t.Fatalf("sign-in: %d", rec.Code)
		}
		if time.Duration(c.MaxAge)*time.Second != 8*time.Hour {
			t.Fatalf("cookie max age %d, want the absolute session life", c.MaxAge)
		}
		sess, _, err := st.ActiveSession(ctx, c.Value, 0)
		if err != nil {
			t.Fatal(err)
		}
		return &consoleUser{Staff: m, Cookie: c, CSRF: sess.CSRF}
	}
	u := login()
	e.get(u, "/customers").want(t, 200)
	now = now.Add(29 * time.Minute)
	e.get(u, "/customers").want(t, 200)
	now = now.Add(31 * time.Minute)
	if r := e.get(u, "/customers"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("idle 31 minutes: %d", r.StatusCode)
	}

	a, b := login(), login()
	e.get(a, "/account/security").want(t, 200, "192.0.2.1")
	e.post(a, "/account/security/sign-out-everywhere", nil).want(t, http.StatusSeeOther)
	for _, x := range []*consoleUser{a, b} {
		if r := e.get(x, "/customers"); r.StatusCode != http.StatusSeeOther {
			t.Fatal("a session survived sign out everywhere")
		}
	}
	c := login()
	admin := consoleSignIn(t, st, "wang", staff.Admin)
	e.post(admin, fmt.Sprintf("/settings/staff/%d/sessions/revoke", m.ID), nil).want(t, http.StatusSeeOther)
	if r := e.get(c, "/customers"); r.StatusCode != http.StatusSeeOther {
		t.Fatal("a session survived the admin's revoke")
	}
	d := login()
	e.post(admin, fmt.Sprintf("/settings/staff/%d", m.ID), url.Values{"name": {m.Name}, "role": {"sales"}, "disabled": {"on"}}).want(t, http.StatusSeeOther)
	if r := e.get(d, "/customers"); r.StatusCode != http.StatusSeeOther {
		t.Fatal("a disabled account's session still works")
	}
	p, _ := st.ListAudit(ctx, store.AuditQuery{Target: fmt.Sprintf("staff:%d", m.ID)})
	seen := map[string]bool{}
	for _, e := range p.Entries {
		seen[e.Action] = true
	}
	for _, want := range []string{audit.SignIn, audit.SignOutAll, audit.SessionsRevoked, audit.StaffDisable} {
		if !seen[want] {
			t.Errorf("no %s entry for the staff member: %v", want, seen)
		}
	}
}

// TestAuditRecordsEachAction performs every audited action through the API and the console
// and reads each entry back: who, from where, with what, on what.
func TestAuditRecordsEachAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newAPIEnv(t, st)
		srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler), Security: SecurityConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
		e.h = srv.Handler()
		ce := &consoleEnv{t: t, st: st, h: e.h}
		admin := consoleSignIn(t, st, "boss", staff.Admin)
		last := func(action string) store.AuditEntry {
			t.Helper()
			p, err := st.ListAudit(ctx, store.AuditQuery{Action: action, Limit: 1})
			if err != nil || len(p.Entries) == 0 {
				t.Fatalf("no %s entry (%v)", action, err)
			}
			return p.Entries[0]
		}
		id := func(v map[string]any) int64 { return int64(v["id"].(float64)) }

		// Sign-in through a trusted proxy, a failed one, and sign-out.
		st.SetPassword(ctx, e.operator.ID, "correct horse battery")
		req := func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder { return rec }
		rec := req(signInForm(e.h, "olivia", "wrong password!!", "10.0.0.9:5000"))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("failed sign-in: %d", rec.Code)
		}
		if f := last(audit.SignInFailed); f.Detail["login"] != "olivia" || f.StaffID != 0 || strings.Contains(fmt.Sprint(f.Detail), "wrong password") {
			t.Fatalf("failed sign-in entry: %+v", f)
		}
		r2 := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"login": {"olivia"}, "password": {"correct horse battery"}}.Encode()))
		r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r2.Header.Set("User-Agent", "Mozilla/5.0 wxwork/4.1")
		r2.Header.Set("X-Forwarded-For", "203.0.113.77")
		r2.RemoteAddr = "10.0.0.9:5000"
		rec = httptest.NewRecorder()
		e.h.ServeHTTP(rec, r2)
		in := last(audit.SignIn)
		if in.StaffID != e.operator.ID || in.IP != "203.0.113.77" || in.UserAgent != "Mozilla/5.0 wxwork/4.1" || in.Target != fmt.Sprint("staff:", e.operator.ID) {
			t.Fatalf("sign-in entry: %+v", in)
		}
		c := cookieOf(rec, SessionCookie)
		sess, _, _ := st.ActiveSession(ctx, c.Value, 0)
		op := &consoleUser{Staff: e.operator, Cookie: c, CSRF: sess.CSRF}
		ce.post(op, "/logout", nil).want(t, http.StatusSeeOther)
		if out := last(audit.SignOut); out.StaffID != e.operator.ID {
			t.Fatalf("sign-out entry: %+v", out)
		}

		// Staff, roles, passwords and keys.
		lily := id(e.must(201, "POST", "/api/v1/staff", e.adminKey, map[string]any{"login": "lily", "name": "李丽", "role": "sales", "password": "correct horse battery"}))
		if x := last(audit.StaffCreate); x.Target != fmt.Sprint("staff:", lily) || x.StaffID != e.admin.ID || x.KeyID == 0 {
			t.Fatalf("staff.create: %+v", x)
		}
		e.must(200, "PATCH", fmt.Sprint("/api/v1/staff/", lily), e.adminKey, map[string]any{"role": "operator"})
		if x := last(audit.RoleUpdate); x.Detail["from"] != "sales" || x.Detail["to"] != "operator" {
			t.Fatalf("role.update: %+v", x)
		}
		e.must(200, "PATCH", fmt.Sprint("/api/v1/staff/", lily), e.adminKey, map[string]any{"password": "another long secret"})
		if x := last(audit.PasswordChange); x.Target != fmt.Sprint("staff:", lily) || strings.Contains(fmt.Sprint(x.Detail), "another") {
			t.Fatalf("password change: %+v", x)
		}
		ce.post(admin, fmt.Sprintf("/settings/staff/%d", lily), url.Values{"name": {"李丽"}, "role": {"operator"}, "disabled": {"on"}}).want(t, http.StatusSeeOther)
		if x := last(audit.StaffDisable); x.StaffID != admin.Staff.ID || x.KeyID != 0 {
			t.Fatalf("staff.disable: %+v", x)
		}
		k := e.must(201, "POST", "/api/v1/keys", e.adminKey, map[string]any{"kind": "api", "role": "sales", "scope": "read", "name": "BI"})["key"].(map[string]any)
		if x := last(audit.KeyCreate); x.Target != fmt.Sprint("key:", id(k)) || x.Detail["scope"] != "read" {
			t.Fatalf("key.create: %+v", x)
		}
		e.must(204, "DELETE", fmt.Sprint("/api/v1/keys/", id(k)), e.adminKey, nil)
		if x := last(audit.KeyRevoke); x.Target != fmt.Sprint("key:", id(k)) {
			t.Fatalf("key.revoke: %+v", x)
		}
		ce.post(admin, "/settings/keys", url.Values{"kind": {"write"}, "name": {"小程序"}}).want(t, 200)
		if x := last(audit.KeyCreate); x.StaffID != admin.Staff.ID || x.Detail["name"] != "小程序" {
			t.Fatalf("console key.create: %+v", x)
		}

		// Bulk tag actions and deletions.
		g := id(e.must(201, "POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": "活动", "kind": "campaign"}))
		tg := id(e.must(201, "POST", "/api/v1/tags", e.opKey, map[string]any{"group_id": g, "name": "618"}))
		cust := e.create(e.adminKey, map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": "c1"}}})
		e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{tg}, "customers": []int64{cust}})
		if x := last(audit.TagsBulkAssign); x.StaffID != e.operator.ID || x.Detail["request"] == nil || x.Detail["result"] == nil {
			t.Fatalf("tags.bulk_assign: %+v", x)
		}
		e.must(200, "POST", "/api/v1/tags/remove", e.opKey, map[string]any{"tags": []int64{tg}, "customers": []int64{cust}})
		last(audit.TagsBulkRemove)
		seg := id(e.must(201, "POST", "/api/v1/segments", e.opKey, map[string]any{"name": "全部", "tree": map[string]any{"field": "name", "cmp": "is_set"}}))
		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/export", seg), e.opKey, nil); r.Code != 200 {
			t.Fatalf("export: %d %s", r.Code, r.Body)
		}
		if x := last(audit.CustomerExport); x.Target != fmt.Sprint("segment:", seg) || x.Detail["x-segment-count"] == nil {
			t.Fatalf("customer.export: %+v", x)
		}
		if r := e.call("GET", "/api/v1/analytics/metrics?from=2024-03-01&to=2024-03-08&format=csv", e.opKey, nil); r.Code != 200 {
			t.Fatalf("analytics csv: %d", r.Code)
		}
		if x := last(audit.AnalyticsExport); x.Target != "analytics:metrics" {
			t.Fatalf("analytics.export: %+v", x)
		}
		e.must(200, "GET", "/api/v1/analytics/metrics?from=2024-03-01&to=2024-03-08", e.opKey, nil)
		if p, _ := st.ListAudit(ctx, store.AuditQuery{Action: audit.AnalyticsExport}); len(p.Entries) != 1 {
			t.Fatal("a JSON report was audited as an export")
		}
		e.must(204, "DELETE", fmt.Sprint("/api/v1/segments/", seg), e.opKey, nil)
		last(audit.SegmentDelete)
		e.must(200, "DELETE", fmt.Sprint("/api/v1/tags/", tg), e.opKey, nil)
		if x := last(audit.TagDelete); x.Target != fmt.Sprint("tag:", tg) {
			t.Fatalf("tag.delete: %+v", x)
		}
		// A refused deletion writes nothing.
		if r := e.call("DELETE", "/api/v1/segments/999999", e.opKey, nil); r.Code != 404 {
			t.Fatalf("delete missing segment: %d", r.Code)
		}
		if p, _ := st.ListAudit(ctx, store.AuditQuery{Action: audit.SegmentDelete}); len(p.Entries) != 1 {
			t.Fatal("a failed deletion was audited")
		}
		ce.post(admin, fmt.Sprintf("/tags/groups/%d/delete", g), url.Values{"confirm": {"yes"}}).want(t, http.StatusSeeOther)
		if x := last(audit.TagGroupDelete); x.Target != fmt.Sprint("tag_group:", g) || x.StaffID != admin.Staff.ID {
			t.Fatalf("tag_group.delete: %+v", x)
		}

		// The log itself: admins only, searchable, paged.
		if r := e.call("GET", "/api/v1/audit", e.opKey, nil); r.Code != 403 {
			t.Fatalf("operator reading the audit log: %d", r.Code)
		}
		v := e.must(200, "GET", "/api/v1/audit?action=auth&limit=2", e.adminKey, nil)
		if n := len(v["entries"].([]any)); n != 2 || v["next_cursor"] == nil {
			t.Fatalf("paged audit: %v", v)
		}
		v = e.must(200, "GET", "/api/v1/audit?q=203.0.113.77", e.adminKey, nil)
		if n := len(v["entries"].([]any)); n != 1 {
			t.Fatalf("search by address: %d entries", n)
		}
		for q, field := range map[string]string{"from=yesterday": "from", "staff_id=-1": "staff_id", "limit=9999": "limit", "cursor=zz": "cursor"} {
			if r := e.call("GET", "/api/v1/audit?"+q, e.adminKey, nil); r.Code != 422 || r.field(t) != field {
				t.Errorf("%s: %d %s", q, r.Code, r.Body)
			}
		}
		page := ce.get(admin, "/settings/audit?action=tag.delete")
		page.want(t, 200, fmt.Sprint("tag:", tg))
		if strings.Contains(page.Body, `title="staff.create"`) {
			t.Fatal("the console filter did not filter")
		}
		ce.get(op, "/settings/audit").want(t, http.StatusSeeOther) // signed out above
		raw, _ := json.Marshal(e.must(200, "GET", "/api/v1/audit?limit=500", e.adminKey, nil))
		for _, secret := range []string{"correct horse battery", "another long secret", "wrong password!!"} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("a password reached the audit log: %q", secret)
			}
		}
	})
}

// TestWeComSecretChangeIsAuditedWithoutValues: the WeCom settings API validates each field,
// never answers a secret, and records which fields changed — not their values.
func TestWeComSecretChangeIsAuditedWithoutValues(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newAPIEnv(t, st)
	aes := strings.Repeat("Ab3", 14) + "x"
	if r := e.call("PUT", "/api/v1/settings/wecom", e.adminKey, map[string]any{"encoding_aes_key": "short"}); r.Code != 422 || r.field(t) != "encoding_aes_key" {
		t.Fatalf("bad AES key: %d %s", r.Code, r.Body)
	}
	if r := e.call("PUT", "/api/v1/settings/wecom", e.adminKey, map[string]any{"password": "x"}); r.Code != 400 || r.field(t) != "password" {
		t.Fatalf("unknown field: %d %s", r.Code, r.Body)
	}
	if r := e.call("PUT", "/api/v1/settings/wecom", e.opKey, map[string]any{"secret": "s3cr3t-value"}); r.Code != 403 {
		t.Fatalf("operator changing a secret: %d", r.Code)
	}
	if p, _ := st.ListAudit(context.Background(), store.AuditQuery{Action: audit.SecretChange}); len(p.Entries) != 0 {
		t.Fatal("a refused change was audited")
	}
	r := e.call("PUT", "/api/v1/settings/wecom", e.adminKey, map[string]any{"corp_id": "ww0123456789abcdef", "token": "Tok3n", "encoding_aes_key": aes, "secret": "s3cr3t-value"})
	if r.Code != 200 || strings.Contains(string(r.Body), "s3cr3t") || strings.Contains(string(r.Body), aes) || !strings.Contains(string(r.Body), `"secret_set":true`) {
		t.Fatalf("set: %d %s", r.Code, r.Body)
	}
	if v, _, _ := st.Setting(context.Background(), "wecom.secret"); v != "s3cr3t-value" {
		t.Fatalf("secret not stored: %q", v)
	}
	p, _ := st.ListAudit(context.Background(), store.AuditQuery{Action: audit.SecretChange})
	if len(p.Entries) != 1 || p.Entries[0].Target != "settings:wecom" || fmt.Sprint(p.Entries[0].Detail["fields"]) != "[corp_id token encoding_aes_key secret]" {
		t.Fatalf("audit: %+v", p.Entries)
	}
	raw, _ := json.Marshal(p.Entries)
	if strings.Contains(string(raw), "s3cr3t") || strings.Contains(string(raw), aes) {
		t.Fatal("a secret reached the audit log")
	}
	e.must(200, "PUT", "/api/v1/settings/wecom", e.adminKey, map[string]any{"secret": ""})
	if v := e.must(200, "GET", "/api/v1/settings/wecom", e.adminKey, nil); v["secret_set"] != false || v["corp_id"] != "ww0123456789abcdef" {
		t.Fatalf("after clearing: %v", v)
	}
}

// BenchmarkKeyedLimiter is the per-request cost of a rate limit (ingestion, public pages),
// over 10,000 distinct keys.
func BenchmarkKeyedLimiter(b *testing.B) {
	l := newKeyedLimiter(1e9, 1e9)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

// TestAccountSecurityPage walks 账号安全: enrol two-factor from the QR page's key, see the
// recovery codes once, change the password under the policy.
func TestAccountSecurityPage(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	e := newConsoleEnv(t, st)
	u := consoleSignIn(t, st, "sun", staff.Operator)
	st.SetPassword(ctx, u.Staff.ID, "correct horse battery")
	tok, sess, _ := st.CreateSession(ctx, u.Staff.ID, time.Hour)
	u.Cookie.Value, u.CSRF = tok, sess.CSRF

	e.get(u, "/account/security").want(t, 200, "/account/security/totp/start")
	page := e.post(u, "/account/security/totp/start", nil)
	page.want(t, 200, "data:image/png;base64,")
	m := regexp.MustCompile(`<code class="mono">([A-Z2-7]+)</code>`).FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no manual key on the enrolment page\n%s", excerpt(page.Body))
	}
	e.post(u, "/account/security/totp/confirm", url.Values{"code": {"000000"}}).want(t, 422)
	code, _ := totp.GenerateCode(m[1], now)
	done := e.post(u, "/account/security/totp/confirm", url.Values{"code": {code}})
	done.want(t, 200, "recovery-codes")
	if n := strings.Count(done.Body, "<li>"); n < staff.RecoveryCodeCount {
		t.Fatalf("%d recovery codes shown", n)
	}
	if s, _ := st.TOTPState(ctx, u.Staff.ID); !s.Enabled || s.RecoveryCodes != staff.RecoveryCodeCount {
		t.Fatalf("state after enrolment: %+v", s)
	}
	// Turning it off needs the password.
	e.post(u, "/account/security/totp/disable", url.Values{"current_password": {"nope nope nope"}}).want(t, 422)
	if s, _ := st.TOTPState(ctx, u.Staff.ID); !s.Enabled {
		t.Fatal("disabled without the password")
	}
	// Own password: the current one, then the policy.
	e.post(u, "/account/security/password", url.Values{"current_password": {"wrong one here"}, "password": {"a new long phrase"}, "password2": {"a new long phrase"}}).want(t, 422)
	e.post(u, "/account/security/password", url.Values{"current_password": {"correct horse battery"}, "password": {"qwertyuiop"}, "password2": {"qwertyuiop"}}).want(t, 422, "too common")
	r := e.post(u, "/account/security/password", url.Values{"current_password": {"correct horse battery"}, "password": {"a new long phrase"}, "password2": {"a new long phrase"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("password change: %d %v", r.StatusCode, r.Header)
	}
	if _, err := st.CheckLogin(ctx, "sun", "a new long phrase"); err != nil {
		t.Fatal("the new password does not work")
	}
	p, _ := st.ListAudit(ctx, store.AuditQuery{StaffID: u.Staff.ID})
	var got []string
	for _, x := range p.Entries {
		got = append(got, x.Action)
	}
	if strings.Join(got, ",") != audit.PasswordChange+","+audit.TOTPEnabled {
		t.Fatalf("audit: %v", got)
	}
}

// TestAuditCoversDeletesAndExports: every DELETE route of the API, every console form that
// deletes, removes or revokes, and every export or download is audited — by the route table or
// by its handler — or left out on purpose with a reason.
func TestAuditCoversDeletesAndExports(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler)}
	srv.Handler()
	known := map[string]bool{}
	for p := range auditRoutes {
		known[p] = true
	}
	for _, p := range append(auditedByHandler, notAudited...) {
		if known[p] {
			t.Errorf("%s is listed twice", p)
		}
		known[p] = true
	}
	var patterns []string
	for _, rt := range apiRoutes {
		patterns = append(patterns, rt.Method+" "+rt.Pattern)
	}
	patterns = append(patterns, srv.consoleRoutes...)
	sensitive := regexp.MustCompile(`^DELETE |^POST .*/(delete|remove|revoke)$|/export$|format=csv`)
	registered := map[string]bool{}
	for _, p := range patterns {
		registered[p] = true
		if sensitive.MatchString(p) && !known[p] {
			t.Errorf("%s deletes or exports but is not audited (add it to auditRoutes, auditedByHandler or notAudited)", p)
		}
	}
	for p := range known {
		if !registered[p] {
			t.Errorf("%s is in the audit lists but is no route", p)
		}
	}
	for p, spec := range auditRoutes {
		found := false
		for _, a := range audit.Actions {
			found = found || a == spec.Action
		}
		if !found {
			t.Errorf("%s: action %q is not in audit.Actions", p, spec.Action)
		}
	}
}

// TestAuditActionsAreTranslated: the 审计日志 page names every action in both languages.
func TestAuditActionsAreTranslated(t *testing.T) {
	for _, lang := range locale.Languages {
		for _, a := range audit.Actions {
			if !locale.Has(lang, "audit.action."+a) {
				t.Errorf("%s: no message audit.action.%s", lang, a)
			}
		}
	}
}

// TestSessionAndTwoFactorAPI: the caller's sessions, sign out everywhere, and an admin's
// revoke and two-factor reset over the API, each audited.
func TestSessionAndTwoFactorAPI(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	e := newAPIEnv(t, st)
	cookie := func() string {
		tok, _, err := st.StartSession(ctx, store.SessionStart{StaffID: e.sales.ID, TTL: time.Hour, IP: "192.0.2.8", UserAgent: "iPhone 企业微信"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a, b := cookie(), cookie()
	r := e.call("GET", "/api/v1/me/sessions", "", nil, "Cookie", a)
	if r.Code != 200 || strings.Count(string(r.Body), "192.0.2.8") != 2 {
		t.Fatalf("my sessions: %d %s", r.Code, r.Body)
	}
	if r := e.call("DELETE", fmt.Sprint("/api/v1/staff/", e.sales.ID, "/sessions"), e.salesKey, nil); r.Code != 403 {
		t.Fatalf("sales revoking sessions: %d", r.Code)
	}
	if v := e.must(200, "DELETE", fmt.Sprint("/api/v1/staff/", e.sales.ID, "/sessions"), e.adminKey, nil); v["signed_out"] != float64(2) {
		t.Fatalf("admin revoke: %v", v)
	}
	if r := e.call("GET", "/api/v1/me/sessions", "", nil, "Cookie", b); r.Code != 401 {
		t.Fatalf("a revoked session still works: %d", r.Code)
	}
	if r := e.call("DELETE", "/api/v1/staff/999999/sessions", e.adminKey, nil); r.Code != 404 {
		t.Fatalf("unknown staff: %d", r.Code)
	}
	enr, _ := staff.NewTOTP("siyu", "sam")
	st.BeginTOTP(ctx, e.sales.ID, enr.Secret)
	code, _ := totp.GenerateCode(enr.Secret, time.Now())
	if _, err := st.ConfirmTOTP(ctx, e.sales.ID, code, nil); err != nil {
		t.Fatal(err)
	}
	e.must(204, "DELETE", fmt.Sprint("/api/v1/staff/", e.sales.ID, "/totp"), e.adminKey, nil)
	if s, _ := st.TOTPState(ctx, e.sales.ID); s.Enabled {
		t.Fatal("two-factor survived the admin's reset")
	}
	// Sign out everywhere through the API with a session: its own cookie ends too.
	c := cookie()
	hdr := []string{"Cookie", c}
	sess, _, _ := st.ActiveSession(ctx, c, 0)
	if r := e.call("DELETE", "/api/v1/me/sessions", "", nil, append(hdr, "X-CSRF-Token", sess.CSRF)...); r.Code != 200 {
		t.Fatalf("sign out everywhere: %d %s", r.Code, r.Body)
	}
	if r := e.call("GET", "/api/v1/me/sessions", "", nil, hdr...); r.Code != 401 {
		t.Fatalf("after sign out everywhere: %d", r.Code)
	}
	for _, a := range []string{audit.SessionsRevoked, audit.TOTPDisabled, audit.SignOutAll} {
		if p, _ := st.ListAudit(ctx, store.AuditQuery{Action: a, Target: fmt.Sprint("staff:", e.sales.ID)}); len(p.Entries) != 1 {
			t.Errorf("%s: %d entries", a, len(p.Entries))
		}
	}
}
