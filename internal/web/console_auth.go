package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// loginData is what the sign-in page shows.
type loginData struct {
	Login string
	Next  string
	Error string // a translated message, or ""
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if _, err := s.sessionPrincipal(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := s.newView(w, r, "", "login.title")
	v.Data = loginData{Next: next}
	s.render(w, r, http.StatusOK, "login", v)
}

// loginSubmit checks a password. Attempts are limited per client address and per login, a
// failure never says whether the login exists, and every attempt is audited (the login tried,
// never the password). An account with two-factor on gets a pending session that is good only
// for the second step (/login/2fa).
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	login := strings.TrimSpace(r.PostFormValue("login"))
	password := r.PostFormValue("password")
	v := s.newView(w, r, "", "login.title")
	data := loginData{Login: login, Next: localPath(r.PostFormValue("next"))}
	fail := func(status int, key string) {
		data.Error = v.T(key)
		v.Data = data
		s.render(w, r, status, "login", v)
	}
	if !s.limiter.Allow(s.clientIP(r), login) {
		s.Log.Warn("sign-in rate limited", "ip", s.clientIP(r), "login", login)
		w.Header().Set("Retry-After", "60")
		fail(http.StatusTooManyRequests, "login.too_many")
		return
	}
	if login == "" || password == "" {
		fail(http.StatusUnauthorized, "login.missing")
		return
	}
	m, err := s.Store.CheckLogin(r.Context(), login, password)
	if errors.Is(err, store.ErrNotFound) {
		s.audit(r, audit.SignInFailed, "", map[string]any{"login": clipRunes(login, 100), "reason": "password"})
		fail(http.StatusUnauthorized, "login.invalid")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	tf, err := s.Store.TOTPState(r.Context(), m.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		s.Store.DeleteSession(r.Context(), c.Value) // never keep a session across sign-ins
	}
	if tf.Enabled {
		token, _, err := s.Store.StartSession(r.Context(), store.SessionStart{StaffID: m.ID, IP: s.clientIP(r), UserAgent: r.UserAgent(), Pending: true})
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: token, Path: "/login", MaxAge: int(store.PendingTTL / time.Second),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r)})
		http.Redirect(w, r, "/login/2fa?next="+url.QueryEscape(data.Next), http.StatusSeeOther)
		return
	}
	s.signIn(w, r, m.ID, "", map[string]any{"factors": "password"}, data.Next)
}

// pendingCookie carries a password-only session to the second step of sign-in.
const pendingCookie = "siyu_2fa"

func (s *Server) secureCookie(r *http.Request) bool { return s.SecureCookies || r.TLS != nil }

// signIn starts a full session (replacing the pending one, when there is one), sets the
// cookie, audits the sign-in and goes on to next.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, staffID int64, pendingToken string, detail map[string]any, next string) {
	start := store.SessionStart{StaffID: staffID, TTL: s.Security.SessionMax, IP: s.clientIP(r), UserAgent: r.UserAgent()}
	var (
		token string
		sess  staff.Session
		err   error
	)
	if pendingToken != "" {
		token, sess, err = s.Store.CompleteSession(r.Context(), pendingToken, start)
	} else {
		token, sess, err = s.Store.StartSession(r.Context(), start)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	e := s.auditEntry(r, audit.SignIn, fmt.Sprintf("staff:%d", staffID), detail)
	e.StaffID = staffID
	if err := s.Store.AppendAudit(r.Context(), e); err != nil {
		s.Log.Error("audit log write failed", "action", audit.SignIn, "staff", staffID, "err", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		Expires: sess.ExpiresAt, MaxAge: int(s.Security.SessionMax / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookie(r),
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (behind s.console, so it needs the CSRF token).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.Store.DeleteSession(r.Context(), c.Value); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.audit(r, audit.SignOut, fmt.Sprintf("staff:%d", principalFrom(r).StaffID()), nil)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookie(r)})
	setFlash(w, "success", "flash.signed_out")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// switchLang remembers a language for a year and goes back to the page it was chosen on.
// Choosing a language changes nothing but a preference cookie, so a plain link does.
func (s *Server) switchLang(w http.ResponseWriter, r *http.Request) {
	lang := locale.Supported(r.URL.Query().Get("to"))
	if lang == "" {
		lang = locale.Default
	}
	http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode, Secure: s.SecureCookies || r.TLS != nil})
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}
