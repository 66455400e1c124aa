package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/locale"
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

// loginSubmit checks a password. Attempts are limited per client address and per login, and
// a failure never says whether the login exists.
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
	if !s.limiter.Allow(clientIP(r), login) {
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
		fail(http.StatusUnauthorized, "login.invalid")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		s.Store.DeleteSession(r.Context(), c.Value) // never keep a session across sign-ins
	}
	token, sess, err := s.Store.CreateSession(r.Context(), m.ID, SessionTTL)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		Expires: sess.ExpiresAt, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.SecureCookies || r.TLS != nil,
	})
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

// logout ends the session (behind s.console, so it needs the CSRF token).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.Store.DeleteSession(r.Context(), c.Value); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.SecureCookies || r.TLS != nil})
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
