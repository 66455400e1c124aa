package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/survey"
)

// The public survey page, /s/{token}: no sign-in, mobile-first, in zh-CN unless the visitor
// chose English. A respondent is known by a signed per-customer link (?c=&e=&sig=, see
// survey.Sign) or, where the survey allows it, by the phone number they type. Submissions are
// rate limited per client address and per survey, capped in size and checked answer by answer
// on the server; a refused submission writes nothing and shows the form again with its
// problems.

// surveyFormLimit caps a submitted form: a hundred long text answers fit.
const surveyFormLimit = 64 << 10

// Submission limits of the public page, beyond the per-address limit of every public page
// (limitPublic): per client address, a burst of 10 then one every 6 seconds (a family behind
// one NAT can still answer; a script cannot flood), and per survey 300 then 50 a second (a
// broadcast's wave of respondents passes; a botnet cannot swamp the database).
const (
	surveySubmitIPRate   = 1.0 / 6
	surveySubmitIPBurst  = 10
	surveySubmitAllRate  = 50
	surveySubmitAllBurst = 300
)

// surveyLimiters are the public page's submission limiters (keyedLimiter, security.go), on
// the store's clock so that tests control time.
type surveyLimiters struct {
	submitIP, submitSurvey *keyedLimiter
}

func newSurveyLimiters(now func() time.Time) *surveyLimiters {
	l := &surveyLimiters{
		submitIP:     newKeyedLimiter(surveySubmitIPRate, surveySubmitIPBurst),
		submitSurvey: newKeyedLimiter(surveySubmitAllRate, surveySubmitAllBurst),
	}
	l.submitIP.now, l.submitSurvey.now = now, now
	return l
}

// routesSurveys mounts the public survey page (the console's survey pages are mounted with the
// console: routesSurveysConsole).
func (s *Server) routesSurveys(mux *http.ServeMux) {
	s.surveyLimits = newSurveyLimiters(s.Store.Now)
	cop := http.NewCrossOriginProtection()
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, cop.Handler(h)) }
	handle("GET /s/{token}", s.limitPublic(s.surveyPage))
	// Submissions have limits of their own (stricter per address than limitPublic, and per
	// survey), answered with the survey's own mobile 429 page.
	handle("POST /s/{token}", s.surveySubmit)
	handle("GET /s/{token}/done", s.limitPublic(s.surveyDone))
}

// publicPage is what the public template receives.
type publicPage struct {
	Lang      string
	OtherLang string
	LangURL   string
	Status    int
	// State is "form", "done", "answered", "forged", "expired", "link_required", "not_found",
	// "closed", "rate_limited", "too_large" or "bad_request".
	State     string
	Why       string // with State closed: draft, closed, not_started or ended
	Survey    *survey.Survey
	Action    string // the form's action: the page's own path and link query
	AskPhone  bool
	Phone     string
	PhoneErr  string
	Values    url.Values
	Problems  map[string]string
	Provinces []survey.Province
}

// Value is the submitted value of a field, to fill the form again.
func (p *publicPage) Value(field string) string { return p.Values.Get(field) }

// Checked reports whether option was chosen in question id's field.
func (p *publicPage) Checked(id, option string) bool {
	for _, v := range p.Values[survey.FormField(id)] {
		if v == option {
			return true
		}
	}
	return false
}

// Scale is 1…n, for a rating's buttons.
func (p *publicPage) Scale(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// Num is the number a question shows (1-based).
func (p *publicPage) Num(i int) int { return i + 1 }

// Field is the form field of question id, and Sub one of its parts (a region's province).
func (p *publicPage) Field(id string) string        { return survey.FormField(id) }
func (p *publicPage) Sub(id, part string) string    { return survey.FormField(id) + "." + part }
func (p *publicPage) Str(n int) string              { return strconv.Itoa(n) }
func (p *publicPage) Selected(field, v string) bool { return p.Values.Get(field) == v }

var publicTemplates = sync.OnceValues(func() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, lang := range locale.Languages {
		t, err := template.New("").Funcs(templateFuncs(lang)).ParseFS(templateFS, "templates/survey_public.html")
		if err != nil {
			return nil, fmt.Errorf("template survey_public: %w", err)
		}
		out[lang] = t
	}
	return out, nil
})

// renderPublic writes the public page in the visitor's language.
func (s *Server) renderPublic(w http.ResponseWriter, r *http.Request, p *publicPage) {
	p.Lang = requestLang(r)
	p.OtherLang = locale.En
	if p.Lang == locale.En {
		p.OtherLang = locale.ZhCN
	}
	p.LangURL = "/lang?to=" + url.QueryEscape(p.OtherLang) + "&next=" + url.QueryEscape(r.URL.RequestURI())
	if p.Status == 0 {
		p.Status = http.StatusOK
	}
	sets, err := publicTemplates()
	if err != nil {
		s.Log.Error("survey templates", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := sets[p.Lang].ExecuteTemplate(&buf, "survey-public", p); err != nil {
		s.Log.Error("render survey page", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Robots-Tag", "noindex")
	w.WriteHeader(p.Status)
	w.Write(buf.Bytes())
}

func (s *Server) publicError(w http.ResponseWriter, r *http.Request, status int, state string, sv *survey.Survey) {
	s.renderPublic(w, r, &publicPage{Status: status, State: state, Survey: sv})
}

// respondent is who the request says answers: a customer from a verified link, or nobody yet
// (a phone will say). ok is false when the page has been answered already (an error page).
func (s *Server) respondent(w http.ResponseWriter, r *http.Request, sv *survey.Survey) (customerID int64, ok bool) {
	q := r.URL.Query()
	if !survey.HasLink(q) {
		if sv.Identify != survey.ByPhone {
			s.publicError(w, r, http.StatusForbidden, "link_required", sv)
			return 0, false
		}
		return 0, true
	}
	secret, err := s.Store.SurveyLinkSecret(r.Context())
	if err != nil {
		s.Log.Error("survey link secret", "err", err)
		s.publicError(w, r, http.StatusInternalServerError, "bad_request", sv)
		return 0, false
	}
	cid, err := survey.Verify(secret, sv.ID, q, s.Store.Now())
	switch {
	case errors.Is(err, survey.ErrExpired):
		s.publicError(w, r, http.StatusForbidden, "expired", sv)
		return 0, false
	case err != nil:
		s.Log.Warn("survey link refused", "survey", sv.ID, "ip", s.clientIP(r), "reason", err)
		s.publicError(w, r, http.StatusForbidden, "forged", sv)
		return 0, false
	}
	return cid, true
}

// loadPublicSurvey reads the survey of /s/{token} and checks it takes answers.
func (s *Server) loadPublicSurvey(w http.ResponseWriter, r *http.Request) (*survey.Survey, bool) {
	sv, err := s.Store.SurveyByToken(r.Context(), r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) {
		s.publicError(w, r, http.StatusNotFound, "not_found", nil)
		return nil, false
	}
	if err != nil {
		s.Log.Error("load survey", "err", err)
		s.publicError(w, r, http.StatusInternalServerError, "bad_request", nil)
		return nil, false
	}
	if ok, why := sv.Accepting(s.Store.Now()); !ok {
		s.renderPublic(w, r, &publicPage{Status: http.StatusForbidden, State: "closed", Why: why, Survey: sv})
		return nil, false
	}
	return sv, true
}

func (s *Server) surveyPage(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.loadPublicSurvey(w, r)
	if !ok {
		return
	}
	cid, ok := s.respondent(w, r, sv)
	if !ok {
		return
	}
	if cid != 0 && !sv.AllowRepeat {
		done, err := s.Store.SurveyAnswered(r.Context(), sv.ID, cid)
		if err != nil {
			s.Log.Error("survey answered?", "err", err)
		}
		if done {
			s.publicError(w, r, http.StatusOK, "answered", sv)
			return
		}
	}
	s.renderPublic(w, r, s.formPage(r, sv, cid, nil))
}

func (s *Server) formPage(r *http.Request, sv *survey.Survey, cid int64, values url.Values) *publicPage {
	action := "/s/" + url.PathEscape(sv.Token)
	if r.URL.RawQuery != "" && survey.HasLink(r.URL.Query()) {
		link := url.Values{}
		for _, k := range []string{"c", "e", "sig"} {
			link.Set(k, r.URL.Query().Get(k))
		}
		action += "?" + link.Encode()
	}
	if values == nil {
		values = url.Values{}
	}
	return &publicPage{State: "form", Survey: sv, Action: action, AskPhone: cid == 0, Values: values, Problems: map[string]string{}, Provinces: survey.Provinces}
}

func (s *Server) surveySubmit(w http.ResponseWriter, r *http.Request) {
	ip := s.clientIP(r)
	okIP, waitIP := s.surveyLimits.submitIP.Allow(ip)
	okAll, waitAll := s.surveyLimits.submitSurvey.Allow(r.PathValue("token"))
	if !okIP || !okAll {
		s.Log.Warn("survey submission rate limited", "token", r.PathValue("token"), "ip", ip, "per_address", !okIP)
		setRetryAfter(w, max(waitIP, waitAll))
		s.publicError(w, r, http.StatusTooManyRequests, "rate_limited", nil)
		return
	}
	sv, ok := s.loadPublicSurvey(w, r)
	if !ok {
		return
	}
	cid, ok := s.respondent(w, r, sv)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, surveyFormLimit)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.publicError(w, r, http.StatusRequestEntityTooLarge, "too_large", sv)
			return
		}
		s.publicError(w, r, http.StatusBadRequest, "bad_request", sv)
		return
	}
	lang := requestLang(r)
	form := r.PostForm
	page := s.formPage(r, sv, cid, form)
	answers, problems := sv.Decode(form, s.Store.Now())
	for id, p := range problems {
		page.Problems[id] = locale.T(lang, p.Key, p.Args...)
	}
	phone := ""
	if cid == 0 {
		page.Phone = form.Get("phone")
		p, ok := survey.NormalizePhone(page.Phone)
		if !ok {
			page.PhoneErr = locale.T(lang, "survey.err.phone")
		}
		phone = p
	}
	if len(page.Problems) > 0 || page.PhoneErr != "" {
		page.Status = http.StatusUnprocessableEntity
		s.renderPublic(w, r, page)
		return
	}
	res, err := s.Store.SubmitSurvey(r.Context(), store.Submission{
		SurveyID: sv.ID, CustomerID: cid, Phone: phone, Answers: answers, IP: ip,
		AfterStore: afterStoreAll(s.TagRules.AfterStore(s.Log), s.SOPs.AfterStore(s.Log)),
	})
	var na *store.SurveyNotAcceptingError
	switch {
	case errors.Is(err, store.ErrAlreadyAnswered):
		s.publicError(w, r, http.StatusConflict, "answered", sv)
		return
	case errors.As(err, &na):
		s.renderPublic(w, r, &publicPage{Status: http.StatusForbidden, State: "closed", Why: na.Why, Survey: sv})
		return
	case errors.Is(err, store.ErrNotFound):
		s.publicError(w, r, http.StatusForbidden, "forged", sv)
		return
	case err != nil:
		if clientGone(w, r) {
			return
		}
		s.Log.Error("survey submission failed", "survey", sv.ID, "err", err)
		s.publicError(w, r, http.StatusInternalServerError, "bad_request", sv)
		return
	}
	if len(res.Skipped) > 0 {
		s.Log.Warn("survey answers not written to attributes whose type changed", "survey", sv.ID, "skipped", res.Skipped)
	}
	s.Log.Info("survey answered", "survey", sv.ID, "customer", res.CustomerID, "response", res.ResponseID, "new_customer", res.Created, "kept", res.Kept)
	http.Redirect(w, r, "/s/"+url.PathEscape(sv.Token)+"/done", http.StatusSeeOther)
}

// surveyDone is the thank-you page a submission redirects to.
func (s *Server) surveyDone(w http.ResponseWriter, r *http.Request) {
	sv, err := s.Store.SurveyByToken(r.Context(), r.PathValue("token"))
	if err != nil {
		s.publicError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	s.publicError(w, r, http.StatusOK, "done", sv)
}
