package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// consoleEnv is a console served over httptest with a real store.
type consoleEnv struct {
	t  *testing.T
	st *store.Store
	h  http.Handler
}

func newConsoleEnv(t *testing.T, st *store.Store) *consoleEnv {
	t.Helper()
	srv := &Server{Store: st, Log: slog.New(slog.DiscardHandler)}
	return &consoleEnv{t: t, st: st, h: srv.Handler()}
}

// consoleUser is a signed-in staff member: the session cookie and its CSRF token.
type consoleUser struct {
	Staff  *staff.Staff
	Cookie *http.Cookie
	CSRF   string
}

// consoleSignIn creates a staff member with role (no password: tests sign in through the store,
// which spares bcrypt) and a session for them. Other console tests can copy this pattern.
func consoleSignIn(t *testing.T, st *store.Store, login string, role staff.Role) *consoleUser {
	t.Helper()
	m := &staff.Staff{Login: login, Name: strings.ToUpper(login[:1]) + login[1:], Role: role}
	if err := st.CreateStaff(context.Background(), m, ""); err != nil {
		t.Fatalf("create staff %s: %v", login, err)
	}
	token, sess, err := st.CreateSession(context.Background(), m.ID, SessionTTL)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleUser{Staff: m, Cookie: &http.Cookie{Name: SessionCookie, Value: token}, CSRF: sess.CSRF}
}

// newFormRequest is a POST of form (GET when the caller changes the method).
func newFormRequest(target string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// consoleResp is an answer with its body read.
type consoleResp struct {
	*http.Response
	Body   string
	Method string
	Target string
}

// do sends a request as u (nil: signed out). A form makes it a POST with that body; the
// user's CSRF token is added unless the form already has a "csrf" field.
func (e *consoleEnv) do(u *consoleUser, method, target string, form url.Values, cookies ...*http.Cookie) consoleResp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		if u != nil && !form.Has("csrf") {
			form.Set("csrf", u.CSRF)
		}
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if u != nil {
		r.AddCookie(u.Cookie)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return consoleResp{Response: res, Body: string(b), Method: method, Target: target}
}

func (e *consoleEnv) get(u *consoleUser, target string, cookies ...*http.Cookie) consoleResp {
	e.t.Helper()
	return e.do(u, http.MethodGet, target, nil, cookies...)
}

func (e *consoleEnv) post(u *consoleUser, target string, form url.Values) consoleResp {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return e.do(u, http.MethodPost, target, form)
}

// want fails the test unless the answer has status code and its body contains every string.
func (r consoleResp) want(t *testing.T, code int, contains ...string) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d\n%s", r.Method, r.Target, r.StatusCode, code, excerpt(r.Body))
	}
	for _, s := range contains {
		if !strings.Contains(r.Body, s) {
			t.Fatalf("%s %s: body lacks %q\n%s", r.Method, r.Target, s, excerpt(r.Body))
		}
	}
}

// lacks fails the test if the body contains any of the strings.
func (r consoleResp) lacks(t *testing.T, strs ...string) {
	t.Helper()
	for _, s := range strs {
		if strings.Contains(r.Body, s) {
			t.Fatalf("%s %s: body has %q and should not", r.Method, r.Target, s)
		}
	}
}

func excerpt(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

// cookie returns the cookie the answer sets by name, or nil.
func (r consoleResp) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestConsoleTemplatesParse(t *testing.T) {
	sets, err := consoleTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for lang, pages := range sets {
		if len(pages) != len(consolePages) {
			t.Errorf("%s: %d pages, want %d", lang, len(pages), len(consolePages))
		}
	}
}

func TestConsoleSignedOutRedirectsToLogin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		for _, path := range []string{"/", "/customers?q=x", "/customers/1", "/settings/keys", "/tags"} {
			r := e.get(nil, path)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?next="+url.QueryEscape(path) {
				t.Errorf("GET %s signed out: %d %q, want 303 to the sign-in page", path, r.StatusCode, r.Header.Get("Location"))
			}
		}
		r := e.get(nil, "/login?next=%2Fcustomers")
		r.want(t, http.StatusOK, `name="next" value="/customers"`, "登录")
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q: want own scripts only", csp)
		}
		if strings.Contains(r.Body, "<script>") || strings.Contains(r.Body, " style=") {
			t.Error("the page has inline script or style, which the CSP refuses")
		}
	})
}

func TestConsoleStaticAssets(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := &consoleEnv{t: t, h: (&Server{Store: st, Log: slog.New(slog.DiscardHandler)}).Handler()}
	for _, name := range []string{"app.css", "app.js", "logo.svg"} {
		r := e.get(nil, assetURL(name))
		r.want(t, http.StatusOK)
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q, want immutable for a versioned URL", name, cc)
		}
		if r.Header.Get("Content-Type") == "" {
			t.Errorf("%s: no content type", name)
		}
	}
	if cc := e.get(nil, "/static/app.css").Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
		t.Errorf("unversioned asset cached as immutable: %q", cc)
	}
	e.get(nil, "/static/nope.css").want(t, http.StatusNotFound)
}
