package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestConsoleSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		m := &staff.Staff{Login: "chen", Name: "陈静", Role: staff.Operator}
		if err := st.CreateStaff(context.Background(), m, "correct horse"); err != nil {
			t.Fatal(err)
		}
		bad := e.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {"wrong password"}, "next": {"/customers"}})
		bad.want(t, http.StatusUnauthorized, "账号或密码不正确", `value="chen"`)
		if bad.cookie(SessionCookie) != nil {
			t.Fatal("a failed sign-in set a session cookie")
		}
		e.do(nil, http.MethodPost, "/login", url.Values{"login": {"nobody"}, "password": {"correct horse"}}).want(t, http.StatusUnauthorized, "账号或密码不正确")

		ok := e.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {"correct horse"}, "next": {"/customers?q=x"}})
		if ok.StatusCode != http.StatusSeeOther || ok.Header.Get("Location") != "/customers?q=x" {
			t.Fatalf("sign-in: %d to %q, want 303 to /customers?q=x", ok.StatusCode, ok.Header.Get("Location"))
		}
		c := ok.cookie(SessionCookie)
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" || c.MaxAge <= 0 {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP, path /, persistent", c)
		}
		u := &consoleUser{Staff: m, Cookie: &http.Cookie{Name: SessionCookie, Value: c.Value}}
		e.get(u, "/").want(t, http.StatusOK, "陈静", "运营")
		// Signed in, the sign-in page sends you on.
		if r := e.get(u, "/login?next=/customers"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/customers" {
			t.Fatalf("sign-in page when signed in: %d %q", r.StatusCode, r.Header.Get("Location"))
		}

		// Behind TLS (SecureCookies), the cookie is Secure.
		secure := &consoleEnv{t: t, st: st, h: (&Server{Store: st, Log: slog.New(slog.DiscardHandler), SecureCookies: true}).Handler()}
		if c := secure.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {"correct horse"}}).cookie(SessionCookie); c == nil || !c.Secure {
			t.Fatalf("SecureCookies: cookie %+v, want Secure", c)
		}
	})
}

func TestConsoleOpenRedirectRefused(t *testing.T) {
	for next, want := range map[string]string{
		"/customers?q=1":       "/customers?q=1",
		"/customers/7#x":       "/customers/7#x",
		"":                     "/",
		"//evil.example/":      "/",
		"///evil.example/":     "/",
		"/\\evil.example/":     "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"evil.example":         "/",
		"/login?next=/x":       "/",
		"/%0d%0aSet-Cookie:x":  "/%0d%0aSet-Cookie:x", // escaped, so harmless: still a local path
		"/\r\nLocation: //e/":  "/",
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		m := &staff.Staff{Login: "chen", Name: "陈静", Role: staff.Admin}
		if err := st.CreateStaff(context.Background(), m, "correct horse"); err != nil {
			t.Fatal(err)
		}
		r := e.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {"correct horse"}, "next": {"//evil.example/steal"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Fatalf("sign-in with a foreign next: %d to %q, want 303 to /", r.StatusCode, r.Header.Get("Location"))
		}
		r = e.get(nil, "/lang?to=en&next=https://evil.example/")
		if r.Header.Get("Location") != "/" {
			t.Fatalf("language switch with a foreign next went to %q", r.Header.Get("Location"))
		}
		e.get(nil, "/login?next=//evil.example").want(t, http.StatusOK, `name="next" value="/"`)
	})
}

func TestConsoleLoginRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		m := &staff.Staff{Login: "chen", Name: "陈静", Role: staff.Admin}
		if err := st.CreateStaff(context.Background(), m, "correct horse"); err != nil {
			t.Fatal(err)
		}
		// An empty password is refused before bcrypt, but counts as an attempt all the same.
		for i := 1; i <= 10; i++ {
			e.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {""}}).want(t, http.StatusUnauthorized)
		}
		r := e.do(nil, http.MethodPost, "/login", url.Values{"login": {"chen"}, "password": {"correct horse"}})
		r.want(t, http.StatusTooManyRequests, "尝试次数过多")
		if r.cookie(SessionCookie) != nil || r.Header.Get("Retry-After") == "" {
			t.Fatalf("11th attempt: cookie %v, Retry-After %q; want no session and a Retry-After", r.cookie(SessionCookie), r.Header.Get("Retry-After"))
		}
	})
}

func TestConsoleCSRF(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		admin := consoleSignIn(t, st, "admin", staff.Admin)
		create := url.Values{"login": {"li"}, "name": {"李雷"}, "role": {"sales"}, "password": {"0123456789"}}
		for name, tok := range map[string]string{"missing": "", "wrong": "not-the-token", "other session": consoleSignIn(t, st, "admin2", staff.Admin).CSRF} {
			form := url.Values{"csrf": {tok}}
			for k, v := range create {
				form[k] = v
			}
			e.do(admin, http.MethodPost, "/settings/staff", form).want(t, http.StatusForbidden)
			keys := url.Values{"csrf": {tok}, "kind": {"write"}, "name": {"x"}}
			e.do(admin, http.MethodPost, "/settings/keys", keys).want(t, http.StatusForbidden)
			if r := e.do(admin, http.MethodPost, "/logout", url.Values{"csrf": {tok}}); r.StatusCode != http.StatusForbidden {
				t.Fatalf("%s token: logout answered %d, want 403", name, r.StatusCode)
			}
		}
		all, _ := st.ListStaff(context.Background())
		keys, _ := st.ListKeys(context.Background())
		if len(all) != 2 || len(keys) != 0 {
			t.Fatalf("refused requests wrote: %d staff, %d keys; want 2 and 0", len(all), len(keys))
		}
		e.get(admin, "/").want(t, http.StatusOK) // still signed in

		// A cross-site browser POST is refused even with the right token.
		r := e.h
		req := newFormRequest("/settings/keys", url.Values{"csrf": {admin.CSRF}, "kind": {"write"}})
		req.AddCookie(admin.Cookie)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		w := newRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden {
			t.Fatalf("cross-site POST: %d, want 403", w.Code)
		}
	})
}

func TestConsoleLogout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		u := consoleSignIn(t, st, "chen", staff.Operator)
		r := e.post(u, "/logout", nil)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Fatalf("logout: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
		if c := r.cookie(SessionCookie); c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout cookie %+v: want it cleared", c)
		}
		if _, _, err := st.Session(context.Background(), u.Cookie.Value); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session after logout: %v, want gone", err)
		}
		if r := e.get(u, "/customers"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Fatalf("old cookie after logout: %d %q, want the sign-in page", r.StatusCode, r.Header.Get("Location"))
		}
		// The flash says so on the sign-in page.
		e.get(nil, "/login", r.cookie(flashCookie)).want(t, http.StatusOK, "你已退出登录")
	})
}

func TestConsoleLanguage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		u := consoleSignIn(t, st, "chen", staff.Operator)
		e.get(u, "/customers").want(t, http.StatusOK, `<html lang="zh-CN">`, "退出登录", "客户", `href="/lang?to=en&amp;next=%2Fcustomers"`)

		r := e.get(u, "/lang?to=en&next=%2Fcustomers%3Fq%3Dx")
		c := r.cookie(LangCookie)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/customers?q=x" || c == nil || c.Value != "en" {
			t.Fatalf("switch: %d to %q, cookie %+v", r.StatusCode, r.Header.Get("Location"), c)
		}
		en := e.get(u, "/customers", c)
		en.want(t, http.StatusOK, `<html lang="en">`, "Sign out", "Customers", "中文")
		en.lacks(t, "退出登录")

		// Without a cookie, Accept-Language decides; anything unknown is zh-CN.
		for accept, want := range map[string]string{"en-US,en;q=0.9": "Sign in", "zh-CN,zh;q=0.9,en;q=0.8": "登录", "fr-FR": "登录", "fr, en;q=0.5": "Sign in"} {
			req := newFormRequest("/login", nil)
			req.Method = http.MethodGet
			req.Header.Set("Accept-Language", accept)
			w := newRecorder()
			e.h.ServeHTTP(w, req)
			if !strings.Contains(w.Body.String(), "<title>"+want) {
				t.Errorf("Accept-Language %q: page not in the language of %q", accept, want)
			}
		}
		// The cookie beats the header.
		req := newFormRequest("/login", nil)
		req.Method = http.MethodGet
		req.Header.Set("Accept-Language", "zh-CN")
		req.AddCookie(&http.Cookie{Name: LangCookie, Value: "en"})
		w := newRecorder()
		e.h.ServeHTTP(w, req)
		if !strings.Contains(w.Body.String(), "Sign in") {
			t.Error("the language cookie did not win over Accept-Language")
		}
	})
}
