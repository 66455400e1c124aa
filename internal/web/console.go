package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The console: server-rendered pages in zh-CN (default) or English, assets embedded. Handler
// families live in console_auth.go (sign-in, language), console_customers.go (工作台, customers)
// and console_settings.go (keys, staff); formatting helpers in console_format.go.

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// LangCookie remembers the console language a person chose.
const LangCookie = "siyu_lang"

const flashCookie = "siyu_flash"

// section is one entry of the left navigation.
type section struct {
	Key   string // message key suffix (nav.KEY) and active marker
	URL   string
	Icon  string
	Soon  bool         // not built yet: a "coming soon" page
	Roles []staff.Role // who sees it; empty: everyone
}

// sections is the navigation, in order. A later issue that builds a section removes its Soon
// flag and registers its own routes.
var sections = []section{
	{Key: "home", URL: "/", Icon: "home"},
	{Key: "customers", URL: "/customers", Icon: "users"},
	{Key: "pool", URL: "/pool", Icon: "globe", Roles: poolUsers},
	{Key: "transfers", URL: "/transfers", Icon: "users", Roles: ownerAssigners},
	{Key: "tags", URL: "/tags", Icon: "tag", Roles: tagEditors},
	{Key: "segments", URL: "/segments", Icon: "filter", Roles: segmentOperators},
	{Key: "models", URL: "/models", Icon: "layers"},
	{Key: "sop", URL: "/sop", Icon: "flow", Soon: true},
	{Key: "broadcasts", URL: "/broadcasts", Icon: "send", Soon: true},
	{Key: "tasks", URL: "/tasks", Icon: "check", Soon: true},
	{Key: "content", URL: "/content", Icon: "file", Roles: contentReaders},
	{Key: "surveys", URL: "/surveys", Icon: "clipboard", Roles: surveyEditors},
	{Key: "channel_codes", URL: "/channel-codes", Icon: "spark", Roles: channelOperators},
	{Key: "analytics", URL: "/analytics", Icon: "chart", Roles: analyticsReaders},
	{Key: "settings", URL: "/settings", Icon: "gear", Roles: []staff.Role{staff.Admin}},
}

func (s *Server) routesConsole(mux *http.ServeMux) {
	// Defence in depth beside the per-session token: refuse cross-origin browser POSTs
	// (Sec-Fetch-Site / Origin), which also covers the sign-in form that has no session yet.
	cop := http.NewCrossOriginProtection()
	handle := func(pattern string, h http.HandlerFunc) {
		s.consoleRoutes = append(s.consoleRoutes, pattern)
		method, path := splitPattern(pattern)
		mux.Handle(pattern, cop.Handler(s.audited(pattern, withRoutePermission(method, path, h))))
	}
	mux.Handle("GET /static/", staticHandler())
	handle("GET /login", s.loginPage)
	handle("POST /login", s.loginSubmit)
	handle("POST /logout", s.console(s.logout))
	handle("GET /lang", s.switchLang)
	handle("GET /{$}", s.page(s.home))
	handle("GET /reports/weekly", s.console(s.weeklyReportPage, analyticsReaders...))
	handle("GET /analytics", s.page(s.analyticsPage, analyticsReaders...))
	mux.HandleFunc("GET /reports/weekly.css", weeklyReportCSS)
	handle("GET /customers", s.page(s.customersPage))
	handle("GET /customers/{id}", s.page(s.customerPage))
	handle("GET /settings", s.page(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/settings/keys", http.StatusSeeOther)
	}, staff.Admin))
	handle("GET /settings/keys", s.page(s.keysPage, staff.Admin))
	handle("POST /settings/keys", s.page(s.createKey, staff.Admin))
	handle("POST /settings/keys/{id}/revoke", s.page(s.revokeKey, staff.Admin))
	handle("GET /settings/staff", s.page(s.staffPage, staff.Admin))
	handle("POST /settings/staff", s.page(s.createStaff, staff.Admin))
	handle("GET /settings/staff/{id}", s.page(s.staffEditPage, staff.Admin))
	handle("POST /settings/staff/{id}", s.page(s.updateStaff, staff.Admin))
	handle("POST /settings/staff/{id}/password", s.page(s.resetPassword, staff.Admin))
	s.routesTagsConsole(handle)
	s.routesSegmentsConsole(handle)
	s.routesContentConsole(handle)
	s.routesChannelConsole(handle)
	s.routesSurveysConsole(handle)
	s.routesModelsConsole(handle)
	s.routesOwnershipConsole(handle)
	s.routesSecurityConsole(handle)
	s.routesTeamConsole(handle)
	for _, sec := range sections {
		if sec.Soon {
			handle("GET "+sec.URL, s.page(s.comingSoon(sec)))
		}
	}
}

// page wraps a console page: sign-in and CSRF as s.console does, and a role check that answers
// with a friendly 403 page rather than plain text.
func (s *Server) page(h http.HandlerFunc, roles ...staff.Role) http.HandlerFunc {
	return s.console(func(w http.ResponseWriter, r *http.Request) {
		if !principalFrom(r).passes(roles) {
			s.renderError(w, r, http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// crumb is one step of the breadcrumbs; the last has no URL.
type crumb struct{ Label, URL string }

// navItem is a section as the layout draws it.
type navItem struct {
	section
	Active bool
}

// flash is a one-time message shown on the next page (after a redirect).
type flash struct {
	Kind string   `json:"k"` // "success" or "error"
	Key  string   `json:"m"` // message key
	Args []string `json:"a,omitempty"`
}

// view is what every console template receives.
type view struct {
	Lang    string
	Title   string
	Section string
	Crumbs  []crumb
	Flash   *flash
	Me      *staff.Staff // nil on the sign-in page
	CSRF    string
	Path    string // the request URI, for the language switch to come back to
	Nav     []navItem
	Version string
	Bare    bool // no navigation (sign-in, errors for signed-out visitors)
	Data    any
	// Masked shows phone numbers and emails masked: the role lacks customers.reveal.
	Masked bool
}

// T translates in the view's language (for handlers that build messages).
func (v *view) T(key string, args ...any) string { return locale.T(v.Lang, key, args...) }

// Phone is how a phone number is shown: masked (138****5678) for a role without the reveal
// permission.
func (v *view) Phone(p string) string {
	if v.Masked {
		return customer.MaskPhone(p)
	}
	return p
}

// Email is how an email is shown: masked (a***@example.com) without the reveal permission.
func (v *view) Email(e string) string {
	if v.Masked {
		return customer.MaskEmail(e)
	}
	return e
}

// IdentityValue is how an identity's value is shown: phone and email identities masked as
// Phone and Email are.
func (v *view) IdentityValue(id customer.Identity) string {
	if v.Masked {
		return customer.MaskIdentity(id).Value
	}
	return id.Value
}

// FlashText is the flash message in the view's language.
func (v *view) FlashText() string {
	args := make([]any, len(v.Flash.Args))
	for i, a := range v.Flash.Args {
		args[i] = a
	}
	return locale.T(v.Lang, v.Flash.Key, args...)
}

// OtherLang is the language the header's switch offers.
func (v *view) OtherLang() string {
	if v.Lang == locale.En {
		return locale.ZhCN
	}
	return locale.En
}

// LangURL switches to lang and comes back to this page.
func (v *view) LangURL(lang string) string {
	return "/lang?to=" + url.QueryEscape(lang) + "&next=" + url.QueryEscape(v.Path)
}

// requestLang is the language of a request: the siyu_lang cookie, else Accept-Language.
func requestLang(r *http.Request) string {
	if c, err := r.Cookie(LangCookie); err == nil {
		if lang := locale.Supported(c.Value); lang != "" {
			return lang
		}
	}
	return locale.Match(r.Header.Get("Accept-Language"))
}

// newView starts the view of a page: language, the signed-in person, navigation, and the
// flash message left by the previous request (consumed here).
func (s *Server) newView(w http.ResponseWriter, r *http.Request, sectionKey, titleKey string, args ...any) *view {
	v := &view{Lang: requestLang(r), Section: sectionKey, Path: r.URL.RequestURI(), Version: s.Version}
	v.Title = v.T(titleKey, args...)
	if p := principalFrom(r); p != nil && p.Staff != nil {
		v.Me, v.CSRF, v.Masked = p.Staff, p.CSRF, !p.Reveals()
		for _, sec := range sections {
			if p.mayOpen(http.MethodGet, sec.URL, sec.Roles) {
				v.Nav = append(v.Nav, navItem{section: sec, Active: sec.Key == sectionKey})
			}
		}
	} else {
		v.Bare = true
	}
	if c, err := r.Cookie(flashCookie); err == nil {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		var f flash
		if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil && json.Unmarshal(raw, &f) == nil && locale.Has(locale.Default, f.Key) {
			v.Flash = &f
		}
	}
	return v
}

// setFlash leaves a message for the next page; key is a message key, args its arguments.
func setFlash(w http.ResponseWriter, kind, key string, args ...string) {
	b, _ := json.Marshal(flash{Kind: kind, Key: key, Args: args})
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// securityHeaders are the console page's own headers; the rest (CSP, framing, referrer,
// HSTS) are on every answer (secure, security.go).
func securityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
}

// render executes page in the view's language and writes it with status. The page is rendered
// into a buffer first so that a template error is a clean 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	sets, err := consoleTemplates()
	if err != nil {
		s.Log.Error("console templates", "err", err)
		http.Error(w, "console templates are broken", http.StatusInternalServerError)
		return
	}
	t := sets[v.Lang][page]
	if t == nil {
		s.Log.Error("no console template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.Log.Error("render console page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorData is what the error page shows.
type errorData struct {
	Status int
	Key    string // message key prefix: error.404 → error.404.title, error.404.body
}

// renderError answers with a friendly error page (404, 403, 429, 500).
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int) {
	key := fmt.Sprintf("error.%d", status)
	if !locale.Has(locale.Default, key+".title") {
		key = "error.500"
	}
	v := s.newView(w, r, "", key+".title")
	v.Data = errorData{Status: status, Key: key}
	s.render(w, r, status, "error", v)
}

// serverError logs err and answers with the 500 page, which leaks nothing.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(w, r) {
		return
	}
	s.Log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.renderError(w, r, http.StatusInternalServerError)
}

// loadFailed answers a page whose record could not be read, and reports whether it did: the
// 404 page when there is no such record, the 500 page for any other error.
func (s *Server) loadFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		s.renderError(w, r, http.StatusNotFound)
	default:
		s.serverError(w, r, err)
	}
	return true
}

// comingSoon is the page of a section not built yet.
func (s *Server) comingSoon(sec section) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := s.newView(w, r, sec.Key, "nav."+sec.Key)
		v.Crumbs = []crumb{{Label: v.Title}}
		v.Data = sec
		s.render(w, r, http.StatusOK, "soon", v)
	}
}

// consolePages are the page templates; each is parsed together with the layout.
var consolePages = []string{"analytics", "content_list", "content_item", "personas", "channel_codes", "channel_code", "login", "login_2fa", "account_security", "audit", "home", "customers", "customer", "keys", "key_revoke", "staff", "staff_edit", "soon", "error",
	"tags", "tags_confirm", "tag_rules", "tag_rule", "tag_rule_delete", "segments", "segment", "segment_delete", "models",
	"surveys", "survey_edit", "survey_results", "pool", "transfers", "transfer", "departments", "roles", "role"}

// consoleTemplates parses every page once per language, with "t" bound to that language. It
// is lazy so that a broken template fails console requests (and the console tests) loudly
// without stopping the rest of the package.
var consoleTemplates = sync.OnceValues(func() (map[string]map[string]*template.Template, error) {
	out := map[string]map[string]*template.Template{}
	for _, lang := range locale.Languages {
		base, err := template.New("").Funcs(templateFuncs(lang)).ParseFS(templateFS, "templates/layout.html")
		if err != nil {
			return nil, err
		}
		out[lang] = map[string]*template.Template{}
		for _, page := range consolePages {
			t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+page+".html")
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", page, err)
			}
			out[lang][page] = t
		}
	}
	return out, nil
})

// assetHashes maps each static file to a short hash of its content, for cache-busting URLs.
var assetHashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
})

// assetURL is the URL of a static file with its content hash, so it can be cached for a year.
func assetURL(name string) string {
	return "/static/" + name + "?v=" + assetHashes()[name]
}

// staticHandler serves the embedded assets. URLs carry a content hash (assetURL), so a
// versioned URL is cached as immutable; an unversioned one is revalidated.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
		if h, ok := assetHashes()[name]; ok && r.URL.Query().Get("v") == h {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// localPath returns next when it is a path on this site, else "/": a sign-in link must never
// send anyone to another site (an open redirect).
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	if u.Path == "/login" || u.Path == "/lang" {
		return "/"
	}
	return next
}
