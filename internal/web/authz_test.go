package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// The route-by-role test: every API route (from apiRoutes) and every console route (as
// registered) is called as admin, operator, sales, content and anonymous, and the answer must
// be what the tables below say. A route missing from a table fails the test: whoever adds a
// route says who may use it here.

// who is a set of the four built-in roles.
type who uint8

const (
	wAdmin who = 1 << iota
	wOperator
	wSales
	wContent
)

// The sets the tables use. Admin may do everything; anonymous nothing (but the public routes).
const (
	A    = wAdmin
	AO   = wAdmin | wOperator
	AOS  = wAdmin | wOperator | wSales
	AC   = wAdmin | wContent
	AOSC = wAdmin | wOperator | wSales | wContent
)

func (w who) has(r staff.Role) bool {
	switch r {
	case staff.Admin:
		return w&wAdmin != 0
	case staff.Operator:
		return w&wOperator != 0
	case staff.Sales:
		return w&wSales != 0
	case staff.Content:
		return w&wContent != 0
	}
	return false
}

// apiPublic are the API routes anyone may call.
var apiPublic = map[string]bool{"GET /api/v1/openapi.json": true}

// apiExpect says who may call each API route. It is the built-in roles' behaviour from before
// the permission matrix, with two deliberate changes: revealing contact details needs
// customers.reveal (sales may not), and the content role no longer opens customer pages.
var apiExpect = map[string]who{
	"GET /api/v1/me":                             AOSC,
	"GET /api/v1/me/sessions":                    AOSC,
	"DELETE /api/v1/me/sessions":                 AOSC,
	"GET /api/v1/customers":                      AOS,
	"POST /api/v1/customers":                     AOS,
	"GET /api/v1/customers/{id}":                 AOS,
	"PATCH /api/v1/customers/{id}":               AOS,
	"GET /api/v1/customers/{id}/events":          AOS,
	"GET /api/v1/customers/{id}/orders":          AOS,
	"DELETE /api/v1/customers/{id}":              A,
	"GET /api/v1/customers/{id}/export":          A,
	"GET /api/v1/customers/{id}/owner":           AOS,
	"PUT /api/v1/customers/{id}/owner":           AO,
	"POST /api/v1/customers/owner":               AO,
	"POST /api/v1/customers/{id}/reveal":         AO,
	"GET /api/v1/customers/{id}/tags":            AOS,
	"POST /api/v1/customers/{id}/tags":           AOS,
	"GET /api/v1/customers/{id}/models":          AOS,
	"GET /api/v1/customers/{id}/points":          AOS,
	"POST /api/v1/customers/{id}/points":         AOS,
	"GET /api/v1/customers/{id}/tag-history":     AOS,
	"DELETE /api/v1/customers/{id}/tags/{tagId}": AOS,
	"GET /api/v1/pool":                           AOS,
	"POST /api/v1/pool/claim":                    AOS,
	"POST /api/v1/pool/release":                  AOS,
	"GET /api/v1/pool/config":                    AOS,
	"PUT /api/v1/pool/config":                    AO,
	"GET /api/v1/transfers":                      AO,
	"POST /api/v1/transfers":                     AO,
	"GET /api/v1/transfers/{id}":                 AO,
	"GET /api/v1/attributes":                     AOSC,
	"POST /api/v1/attributes":                    AO,
	"GET /api/v1/staff":                          AOSC,
	"POST /api/v1/staff":                         A,
	"PATCH /api/v1/staff/{id}":                   A,
	"DELETE /api/v1/staff/{id}/sessions":         A,
	"DELETE /api/v1/staff/{id}/totp":             A,
	"GET /api/v1/keys":                           A,
	"POST /api/v1/keys":                          A,
	"DELETE /api/v1/keys/{id}":                   A,
	"GET /api/v1/departments":                    AOSC,
	"POST /api/v1/departments":                   A,
	"GET /api/v1/departments/{id}":               AOSC,
	"PATCH /api/v1/departments/{id}":             A,
	"DELETE /api/v1/departments/{id}":            A,
	"GET /api/v1/roles":                          A,
	"POST /api/v1/roles":                         A,
	"GET /api/v1/roles/{id}":                     A,
	"PATCH /api/v1/roles/{id}":                   A,
	"DELETE /api/v1/roles/{id}":                  A,
	"GET /api/v1/audit":                          A,
	"GET /api/v1/segments":                       AOS,
	"POST /api/v1/segments":                      AO,
	"POST /api/v1/segments/count":                AOS,
	"POST /api/v1/segments/explain":              AOS,
	"GET /api/v1/segments/{id}":                  AOS,
	"PATCH /api/v1/segments/{id}":                AO,
	"DELETE /api/v1/segments/{id}":               AO,
	"GET /api/v1/segments/{id}/members":          AOS,
	"GET /api/v1/segments/{id}/export":           AO,
	"GET /api/v1/segments/{id}/explain":          AOS,
	"GET /api/v1/segments/{id}/history":          AO,
	"GET /api/v1/tag-groups":                     AOS,
	"POST /api/v1/tag-groups":                    AO,
	"PATCH /api/v1/tag-groups/{id}":              AO,
	"DELETE /api/v1/tag-groups/{id}":             AO,
	"GET /api/v1/tags":                           AOS,
	"POST /api/v1/tags":                          AO,
	"PATCH /api/v1/tags/{id}":                    AO,
	"DELETE /api/v1/tags/{id}":                   AO,
	"POST /api/v1/tags/assign":                   AO,
	"POST /api/v1/tags/remove":                   AO,
	"GET /api/v1/tag-rules":                      AOS,
	"POST /api/v1/tag-rules":                     AO,
	"GET /api/v1/tag-rules/{id}":                 AOS,
	"PATCH /api/v1/tag-rules/{id}":               AO,
	"DELETE /api/v1/tag-rules/{id}":              AO,
	"POST /api/v1/tag-rules/{id}/backfill":       AO,
	"GET /api/v1/tag-rules/{id}/backfill":        AOS,
	"GET /api/v1/models/rfm/config":              AO,
	"PUT /api/v1/models/rfm/config":              AO,
	"POST /api/v1/models/rfm/run":                AO,
	"GET /api/v1/models/rfm":                     AOS,
	"GET /api/v1/models/rfm/moves":               AOS,
	"GET /api/v1/models/pareto":                  AO,
	"GET /api/v1/models/lifecycle/config":        AO,
	"PUT /api/v1/models/lifecycle/config":        AO,
	"POST /api/v1/models/lifecycle/run":          AO,
	"GET /api/v1/models/lifecycle":               AOS,
	"GET /api/v1/models/journey/config":          AO,
	"PUT /api/v1/models/journey/config":          AO,
	"POST /api/v1/models/journey/run":            AO,
	"GET /api/v1/models/journey":                 AOS,
	"GET /api/v1/models/aipl/config":             AO,
	"PUT /api/v1/models/aipl/config":             AO,
	"POST /api/v1/models/aipl/run":               AO,
	"GET /api/v1/models/aipl":                    AOS,
	"GET /api/v1/models/{model}/flows":           AOS,
	"GET /api/v1/models/{model}/durations":       AOS,
	"GET /api/v1/models/{model}/tags":            AO,
	"PUT /api/v1/models/{model}/tags":            AO,
	"GET /api/v1/models/schedule":                AO,
	"PUT /api/v1/models/schedule":                AO,
	"POST /api/v1/models/schedule/run":           AO,
	"GET /api/v1/models/tiers/config":            AO,
	"PUT /api/v1/models/tiers/config":            AO,
	"POST /api/v1/models/tiers/run":              AO,
	"POST /api/v1/models/tiers/preview":          AO,
	"GET /api/v1/models/tiers":                   AOS,
	"GET /api/v1/models/points/config":           AO,
	"PUT /api/v1/models/points/config":           AO,
	"POST /api/v1/models/points/run":             AO,
	"GET /api/v1/gates":                          AOS,
	"POST /api/v1/gates":                         AO,
	"GET /api/v1/gates/{id}/check":               AOS,
	"GET /api/v1/gates/{id}":                     AOS,
	"PUT /api/v1/gates/{id}":                     AO,
	"DELETE /api/v1/gates/{id}":                  AO,
	"GET /api/v1/settings/wecom":                 A,
	"PUT /api/v1/settings/wecom":                 A,
	"GET /api/v1/analytics/metrics":              AOS,
	"GET /api/v1/analytics/cohorts":              AOS,
	"POST /api/v1/analytics/funnel":              AOS,
	"GET /api/v1/metrics":                        AOS,
	"GET /api/v1/cohorts":                        AOS,
	"POST /api/v1/funnels":                       AOS,
	"GET /api/v1/reports/weekly":                 AOS,
	"GET /api/v1/reports/weekly/settings":        AO,
	"PUT /api/v1/reports/weekly/settings":        AO,
	"POST /api/v1/reports/weekly/send":           AO,
	"GET /api/v1/goals":                          AOS,
	"POST /api/v1/goals":                         AO,
	"GET /api/v1/goals/{id}":                     AOS,
	"PUT /api/v1/goals/{id}":                     AO,
	"DELETE /api/v1/goals/{id}":                  AO,
	"GET /api/v1/sops":                           AO,
	"POST /api/v1/sops":                          AO,
	"GET /api/v1/sops/{id}":                      AO,
	"PUT /api/v1/sops/{id}":                      AO,
	"DELETE /api/v1/sops/{id}":                   AO,
	"POST /api/v1/sops/{id}/enable":              AO,
	"POST /api/v1/sops/{id}/pause":               AO,
	"GET /api/v1/sops/{id}/versions":             AO,
	"GET /api/v1/sops/{id}/preview":              AO,
	"GET /api/v1/sops/{id}/dry-run":              AO,
	"POST /api/v1/sops/{id}/start":               AO,
	"GET /api/v1/tasks":                          AOSC,
	"POST /api/v1/tasks/{id}/done":               AOSC,
	"POST /api/v1/tasks/{id}/skip":               AOSC,
	"GET /api/v1/surveys":                        AOS,
	"POST /api/v1/surveys":                       AO,
	"GET /api/v1/surveys/{id}":                   AOS,
	"PUT /api/v1/surveys/{id}":                   AO,
	"DELETE /api/v1/surveys/{id}":                AO,
	"POST /api/v1/surveys/{id}/close":            AO,
	"GET /api/v1/surveys/{id}/responses":         AOS,
	"GET /api/v1/surveys/{id}/results":           AOS,
	"GET /api/v1/surveys/{id}/export":            AO,
	"GET /api/v1/surveys/{id}/link":              AOS,
	"GET /api/v1/contents":                       AOSC,
	"POST /api/v1/contents":                      AC,
	"GET /api/v1/contents/{id}":                  AOSC,
	"PUT /api/v1/contents/{id}":                  AC,
	"DELETE /api/v1/contents/{id}":               AC,
	"POST /api/v1/contents/{id}/submit":          AC,
	"POST /api/v1/contents/{id}/approve":         AC,
	"POST /api/v1/contents/{id}/reject":          AC,
	"POST /api/v1/contents/{id}/publish":         AC,
	"POST /api/v1/contents/{id}/archive":         AC,
	"GET /api/v1/contents/{id}/comments":         AOSC,
	"POST /api/v1/contents/{id}/comments":        AC,
	"GET /api/v1/contents/{id}/versions":         AOSC,
	"GET /api/v1/contents/{id}/stats":            AOSC,
	"GET /api/v1/content-folders":                AOSC,
	"POST /api/v1/content-folders":               AC,
	"PUT /api/v1/content-folders/{id}":           AC,
	"DELETE /api/v1/content-folders/{id}":        AC,
	"POST /api/v1/content-images":                AC,
	"GET /api/v1/content-images/{id}":            AOSC,
	"GET /api/v1/personas":                       AOSC,
	"POST /api/v1/personas":                      AC,
	"GET /api/v1/personas/{id}":                  AOSC,
	"PUT /api/v1/personas/{id}":                  AC,
	"DELETE /api/v1/personas/{id}":               AC,
	"GET /api/v1/channel-codes":                  AO,
	"POST /api/v1/channel-codes":                 AO,
	"GET /api/v1/channel-codes/{id}":             AO,
	"PUT /api/v1/channel-codes/{id}":             AO,
	"DELETE /api/v1/channel-codes/{id}":          AO,
	"GET /api/v1/channel-codes/{id}/stats":       AO,
}

// consolePublic are console routes that need no sign-in.
var consolePublic = map[string]bool{"GET /login": true, "POST /login": true, "GET /login/2fa": true, "POST /login/2fa": true, "GET /lang": true}

// consoleExpect says who may open each console route (signed-out visitors are sent to the
// sign-in page, or refused on POST).
var consoleExpect = map[string]who{
	"POST /logout":                                 AOSC,
	"GET /{$}":                                     AOSC,
	"GET /account/security":                        AOSC,
	"POST /account/security/password":              AOSC,
	"POST /account/security/totp/start":            AOSC,
	"POST /account/security/totp/confirm":          AOSC,
	"POST /account/security/totp/disable":          AOSC,
	"POST /account/security/recovery-codes":        AOSC,
	"POST /account/security/sessions/{sid}/revoke": AOSC,
	"POST /account/security/sign-out-everywhere":   AOSC,
	"GET /customers":                               AOS,
	"GET /customers/{id}":                          AOS,
	"POST /customers/{id}/tags":                    AOS,
	"POST /customers/{id}/tags/{tagId}/remove":     AOS,
	"GET /settings":                                A,
	"GET /settings/keys":                           A,
	"POST /settings/keys":                          A,
	"POST /settings/keys/{id}/revoke":              A,
	"GET /settings/staff":                          A,
	"POST /settings/staff":                         A,
	"GET /settings/staff/{id}":                     A,
	"POST /settings/staff/{id}":                    A,
	"POST /settings/staff/{id}/password":           A,
	"POST /settings/staff/{id}/sessions/revoke":    A,
	"POST /settings/staff/{id}/totp/reset":         A,
	"GET /settings/audit":                          A,
	"GET /settings/departments":                    A,
	"POST /settings/departments":                   A,
	"POST /settings/departments/{id}":              A,
	"POST /settings/departments/{id}/delete":       A,
	"GET /settings/roles":                          A,
	"POST /settings/roles":                         A,
	"GET /settings/roles/{id}":                     A,
	"POST /settings/roles/{id}":                    A,
	"POST /settings/roles/{id}/delete":             A,
	"GET /tags":                                    AO,
	"POST /tags":                                   AO,
	"POST /tags/tag/{id}":                          AO,
	"POST /tags/tag/{id}/delete":                   AO,
	"POST /tags/groups":                            AO,
	"POST /tags/groups/{id}":                       AO,
	"GET /tags/groups/{id}/delete":                 AO,
	"POST /tags/groups/{id}/delete":                AO,
	"GET /tags/rules":                              AO,
	"GET /tags/rules/new":                          AO,
	"POST /tags/rules/new":                         AO,
	"GET /tags/rules/{id}":                         AO,
	"POST /tags/rules/{id}":                        AO,
	"POST /tags/rules/{id}/delete":                 AO,
	"POST /tags/rules/{id}/backfill":               AO,
	"GET /segments":                                AO,
	"GET /segments/new":                            AO,
	"POST /segments/new":                           AO,
	"GET /segments/{id}":                           AO,
	"POST /segments/{id}":                          AO,
	"POST /segments/{id}/delete":                   AO,
	"GET /surveys":                                 AO,
	"GET /surveys/new":                             AO,
	"POST /surveys/new":                            AO,
	"GET /surveys/{id}":                            AO,
	"GET /surveys/{id}/edit":                       AO,
	"POST /surveys/{id}/edit":                      AO,
	"POST /surveys/{id}/close":                     AO,
	"POST /surveys/{id}/delete":                    AO,
	"GET /surveys/{id}/export":                     AO,
	"GET /models":                                  AOS,
	"POST /models/recompute":                       AO,
	"GET /sop":                                     AO,
	"GET /broadcasts":                              AO,
	"GET /tasks":                                   AOSC,
	"GET /content":                                 AOSC,
	"GET /content/{id}":                            AOSC,
	"GET /content/personas":                        AOSC,
	"POST /content/personas":                       AC,
	"GET /content/new":                             AC,
	"POST /content":                                AC,
	"POST /content/folders":                        AC,
	"POST /content/{id}":                           AC,
	"POST /content/{id}/move":                      AC,
	"POST /content/{id}/comment":                   AC,
	"GET /channel-codes":                           AO,
	"GET /channel-codes/new":                       AO,
	"POST /channel-codes":                          AO,
	"GET /channel-codes/{id}":                      AO,
	"POST /channel-codes/{id}":                     AO,
	"POST /channel-codes/{id}/delete":              AO,
	"GET /pool":                                    AOS,
	"POST /pool/claim":                             AOS,
	"GET /transfers":                               AO,
	"POST /transfers":                              AO,
	"GET /transfers/{id}":                          AO,
	"GET /analytics":                               AOS,
	"GET /reports/weekly":                          AOS,
}

// routeKey is how the tables name a route.
func routeKey(method, pattern string) string { return method + " " + pattern }

// matrixEnv is a server with one staff member and API key per built-in role, a second sales
// person, and one customer for each sales person.
type matrixEnv struct {
	t        *testing.T
	st       *store.Store
	h        http.Handler
	srv      *Server
	ctx      context.Context
	members  map[staff.Role]*staff.Staff
	keys     map[staff.Role]string
	sam, sue *staff.Staff // two sales people
	samKey   string
	suesKey  string
	mine     int64 // sam's customer
	theirs   int64 // sue's customer
}

func newMatrixEnv(t *testing.T, st *store.Store) *matrixEnv {
	t.Helper()
	e := &matrixEnv{t: t, st: st, ctx: context.Background(), members: map[staff.Role]*staff.Staff{}, keys: map[staff.Role]string{}}
	e.srv = &Server{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.h = e.srv.Handler()
	for _, r := range staff.Roles {
		m, key := e.member(string(r), r, 0)
		e.members[r], e.keys[r] = m, key
	}
	e.sam, e.samKey = e.members[staff.Sales], e.keys[staff.Sales]
	e.sue, e.suesKey = e.member("sue", staff.Sales, 0)
	e.mine = e.customer("c-mine", "客户甲", "13800000001", "jia@example.com", e.sam)
	e.theirs = e.customer("c-theirs", "客户乙", "13900000002", "yi@example.com", e.sue)
	return e
}

// member makes a staff member with an API key.
func (e *matrixEnv) member(login string, role staff.Role, dept int64) (*staff.Staff, string) {
	e.t.Helper()
	m := &staff.Staff{Login: login, Name: login, Role: role, DepartmentID: dept}
	if err := e.st.CreateStaff(e.ctx, m, ""); err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := e.st.CreateKey(e.ctx, staff.APIKey, login, role, m.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m, secret
}

// customer makes a customer owned by owner with an order and an event this week.
func (e *matrixEnv) customer(uid, name, phone, email string, owner *staff.Staff) int64 {
	e.t.Helper()
	var id int64
	err := e.st.InTx(e.ctx, func(tx *store.Tx) error {
		res, err := tx.Resolve([]customer.Identity{{Kind: customer.UserID, Value: uid}}, "test")
		if err != nil {
			return err
		}
		id = res.CustomerID
		if err := tx.ApplyPatch(id, &customer.Patch{Name: &name, Phone: &phone, Email: &email, Owner: &owner.Login}); err != nil {
			return err
		}
		if _, err := tx.InsertEvents([]*event.Event{{MessageID: uid + "-e", CustomerID: id, Type: "track", Name: "Viewed", Timestamp: time.Now()}}); err != nil {
			return err
		}
		_, err = tx.UpsertOrder(&event.Order{OrderID: uid + "-o", CustomerID: id, AmountMinor: 10000, Currency: "CNY", PaidAt: time.Now()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// do sends a request: an API key (bearer), a console session (cookie with its CSRF token in
// the form), or nothing.
func (e *matrixEnv) do(method, target, key string, session *staff.Staff, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	switch {
	case key != "":
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
	case session != nil:
		tok, sess, err := e.st.CreateSession(e.ctx, session.ID, time.Hour)
		if err != nil {
			e.t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: tok})
		req.Header.Set("X-CSRF-Token", sess.CSRF)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Body = io.NopCloser(strings.NewReader(url.Values{"csrf": {sess.CSRF}}.Encode()))
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// fill puts ids into a pattern: the sales person's own customer for {id} under /customers
// (so that sales reach the handler), an id that exists nowhere elsewhere and for DELETE (so
// that the walk changes nothing that later requests need), rfm for {model}.
func (e *matrixEnv) fill(method, pattern string) string {
	path := strings.TrimSuffix(pattern, "{$}")
	id := "987654"
	if (strings.HasPrefix(path, "/api/v1/customers/{id}") || strings.HasPrefix(path, "/customers/{id}")) && method != http.MethodDelete {
		id = fmt.Sprint(e.mine)
	}
	return strings.NewReplacer("{id}", id, "{tagId}", "987654", "{model}", "rfm", "{sid}", "987654").Replace(path)
}

// allowedStatus reports whether code shows the request got past authorisation.
func allowedStatus(code int) bool {
	return code != http.StatusUnauthorized && code != http.StatusForbidden
}

func TestRouteByRole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newMatrixEnv(t, st)
		roles := []staff.Role{staff.Admin, staff.Operator, staff.Sales, staff.Content}

		t.Run("api", func(t *testing.T) {
			seen := map[string]bool{}
			for _, rt := range apiRoutes {
				key := routeKey(rt.Method, rt.Pattern)
				seen[key] = true
				target := e.fill(rt.Method, rt.Pattern)
				body := ""
				if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
					body = "{}"
				}
				if apiPublic[key] {
					if rec := e.do(rt.Method, target, "", nil, ""); rec.Code != http.StatusOK {
						t.Errorf("%s anonymous: %d, want 200 (public)", key, rec.Code)
					}
					continue
				}
				want, ok := apiExpect[key]
				if !ok {
					var today []string
					for _, role := range roles {
						today = append(today, fmt.Sprintf("%s %d", role, e.do(rt.Method, target, e.keys[role], nil, body).Code))
					}
					t.Errorf("%s has no expectation: add it to apiExpect (today: %s)", key, strings.Join(today, ", "))
					continue
				}
				if rec := e.do(rt.Method, target, "", nil, body); rec.Code != http.StatusUnauthorized {
					t.Errorf("%s anonymous: %d, want 401", key, rec.Code)
				}
				for _, role := range roles {
					rec := e.do(rt.Method, target, e.keys[role], nil, body)
					switch {
					case want.has(role) && !allowedStatus(rec.Code):
						t.Errorf("%s as %s: %d %s, want it allowed", key, role, rec.Code, firstLine(rec.Body.String()))
					case !want.has(role) && rec.Code != http.StatusForbidden:
						t.Errorf("%s as %s: %d, want 403", key, role, rec.Code)
					case rec.Code >= 500:
						t.Errorf("%s as %s: %d %s", key, role, rec.Code, firstLine(rec.Body.String()))
					}
				}
			}
			for key := range apiExpect {
				if !seen[key] {
					t.Logf("apiExpect names %s, which is not a route (yet)", key)
				}
			}
		})

		t.Run("console", func(t *testing.T) {
			seen := map[string]bool{}
			for _, pattern := range e.srv.consoleRoutes {
				seen[pattern] = true
				if consolePublic[pattern] {
					continue
				}
				method, path := splitPattern(pattern)
				want, ok := consoleExpect[pattern]
				target := e.fill(method, path)
				if !ok {
					var today []string
					for _, role := range roles {
						today = append(today, fmt.Sprintf("%s %d", role, e.do(method, target, "", e.members[role], "").Code))
					}
					t.Errorf("console %s has no expectation: add it to consoleExpect (today: %s)", pattern, strings.Join(today, ", "))
					continue
				}
				rec := e.do(method, target, "", nil, "")
				switch {
				case method == http.MethodGet && (rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login")):
					t.Errorf("console %s signed out: %d → %q, want a redirect to /login", pattern, rec.Code, rec.Header().Get("Location"))
				case method != http.MethodGet && rec.Code != http.StatusUnauthorized:
					t.Errorf("console %s signed out: %d, want 401", pattern, rec.Code)
				}
				for _, role := range roles {
					rec := e.do(method, target, "", e.members[role], "")
					// A signed-out GET is sent to sign in; a POST that redirects there ran (sign-out).
					redirectedToLogin := method == http.MethodGet && rec.Code == http.StatusSeeOther && strings.HasPrefix(rec.Header().Get("Location"), "/login")
					switch {
					case want.has(role) && (!allowedStatus(rec.Code) || redirectedToLogin):
						t.Errorf("console %s as %s: %d, want it allowed", pattern, role, rec.Code)
					case !want.has(role) && rec.Code != http.StatusForbidden:
						t.Errorf("console %s as %s: %d, want 403", pattern, role, rec.Code)
					case rec.Code >= 500:
						t.Errorf("console %s as %s: %d", pattern, role, rec.Code)
					}
				}
			}
			for key := range consoleExpect {
				if !seen[key] {
					t.Logf("consoleExpect names %s, which is not a route (yet)", key)
				}
			}
		})
	})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// TestBuiltInRolesMatchTheMatrix keeps the route table's Roles and the matrix presets in step:
// for every API route, a built-in role passes the Roles list exactly when its preset grants
// the route's cell. Custom roles are judged by the matrix alone, so a route whose cell is
// wrong would open or close it for them.
func TestBuiltInRolesMatchTheMatrix(t *testing.T) {
	for _, rt := range apiRoutes {
		if rt.Public {
			continue
		}
		rp := routePermission(rt.Method, rt.Pattern)
		if rp.Unknown {
			t.Errorf("%s %s: no area for its path: add its first segment to routeAreas", rt.Method, rt.Pattern)
			continue
		}
		for _, r := range staff.Roles {
			legacy := (&Principal{Role: r}).Can(rt.Roles...)
			matrix := staff.Preset(r).Allows(rp.Perm)
			if legacy != matrix {
				t.Errorf("%s %s as %s: Roles say %v, the matrix (%s) says %v", rt.Method, rt.Pattern, r, legacy, rp.Perm, matrix)
			}
		}
	}
}

func TestRoutePermission(t *testing.T) {
	for _, c := range []struct {
		method, pattern string
		want            string
	}{
		{"GET", "/api/v1/customers", "customers.view"},
		{"PATCH", "/api/v1/customers/{id}", "customers.edit"},
		{"POST", "/api/v1/customers/{id}/reveal", "customers.reveal"},
		{"GET", "/api/v1/segments/{id}/export", "segments.export"},
		{"POST", "/api/v1/segments/count", "segments.view"},
		{"GET", "/api/v1/models/journey/config", "models.edit"},
		{"GET", "/api/v1/roles", "staff.view"},
		{"DELETE", "/api/v1/departments/{id}", "staff.edit"},
		{"GET", "/api/v1/tasks", "."},
		{"GET", "/{$}", "."},
		{"GET", "/settings/staff/{id}", "staff.view"},
		{"POST", "/settings/keys", "settings.edit"},
		{"GET", "/settings/audit", "audit.view"},
		{"GET", "/tags", "tags.edit"},
		{"GET", "/api/v1/surveys/{id}/export", "engage.export"},
		{"PUT", "/api/v1/customers/{id}/owner", "customers.assign"},
	} {
		rp := routePermission(c.method, c.pattern)
		if got := rp.Perm.String(); got != c.want || rp.Unknown {
			t.Errorf("%s %s: %s (unknown %v), want %s", c.method, c.pattern, got, rp.Unknown, c.want)
		}
	}
	if rp := routePermission("GET", "/api/v1/teleport"); !rp.Unknown {
		t.Errorf("an unknown area: %+v, want Unknown", rp)
	}
}

// jsonOf decodes an answer.
func jsonOf(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %d is not JSON: %s", rec.Code, rec.Body)
	}
	return v
}

// idsIn lists the ids of a list of customers in an answer field.
func idsIn(v map[string]any, field string) []int64 {
	var ids []int64
	list, _ := v[field].([]any)
	for _, c := range list {
		ids = append(ids, int64(c.(map[string]any)["id"].(float64)))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// TestSalesSeesOnlyOwnCustomers walks every way to reach a customer's data as a sales person
// with two owners' customers in the store: lists, search, profile and its sub-resources,
// segment counts, members and exports, analytics, model counts, the console.
func TestSalesSeesOnlyOwnCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newMatrixEnv(t, st)
		opKey := e.keys[staff.Operator]
		must := func(want int, method, target, key, body string) map[string]any {
			t.Helper()
			rec := e.do(method, target, key, nil, body)
			if rec.Code != want {
				t.Fatalf("%s %s: %d %s, want %d", method, target, rec.Code, rec.Body, want)
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				return jsonOf(t, rec)
			}
			return nil
		}
		mine, theirs := e.mine, e.theirs

		// Lists and search.
		if ids := idsIn(must(200, "GET", "/api/v1/customers", e.samKey, ""), "customers"); !slices.Equal(ids, []int64{mine}) {
			t.Errorf("sam's list: %v, want only %d", ids, mine)
		}
		if ids := idsIn(must(200, "GET", "/api/v1/customers", opKey, ""), "customers"); len(ids) != 2 {
			t.Errorf("operator's list: %v, want both", ids)
		}
		for _, q := range []string{"13900000002", "客户乙", "c-theirs", "yi@example.com"} {
			if ids := idsIn(must(200, "GET", "/api/v1/customers?count=1&q="+url.QueryEscape(q), e.samKey, ""), "customers"); len(ids) != 0 {
				t.Errorf("sam searching %q found %v", q, ids)
			}
		}
		if v := must(200, "GET", "/api/v1/customers?count=1", e.samKey, ""); v["total"] != 1.0 {
			t.Errorf("sam's count: %v, want 1", v["total"])
		}

		// The profile and everything under it answers 404 for another's customer.
		for _, sub := range []string{"", "/events", "/orders", "/tags", "/tag-history", "/models"} {
			if rec := e.do("GET", fmt.Sprintf("/api/v1/customers/%d%s", theirs, sub), e.samKey, nil, ""); rec.Code != http.StatusNotFound {
				t.Errorf("sam GET customer %d%s: %d, want 404", theirs, sub, rec.Code)
			}
			if rec := e.do("GET", fmt.Sprintf("/api/v1/customers/%d%s", mine, sub), e.samKey, nil, ""); rec.Code != http.StatusOK {
				t.Errorf("sam GET own customer %d%s: %d, want 200", mine, sub, rec.Code)
			}
		}
		if rec := e.do("PATCH", fmt.Sprintf("/api/v1/customers/%d", theirs), e.samKey, nil, `{"name":"x"}`); rec.Code != http.StatusNotFound {
			t.Errorf("sam PATCH another's customer: %d, want 404", rec.Code)
		}

		// Segments: live count, saved count, members, explain.
		tree := `{"field":"created_at","cmp":"is_set"}`
		if v := must(200, "POST", "/api/v1/segments/count", e.samKey, `{"tree":`+tree+`}`); v["count"] != 1.0 {
			t.Errorf("sam's live count: %v, want 1", v["count"])
		}
		if v := must(200, "POST", "/api/v1/segments/count", opKey, `{"tree":`+tree+`}`); v["count"] != 2.0 {
			t.Errorf("operator's live count: %v, want 2", v["count"])
		}
		seg := must(201, "POST", "/api/v1/segments", opKey, `{"name":"全部","tree":`+tree+`}`)
		segID := int64(seg["id"].(float64))
		if v := must(200, "GET", fmt.Sprintf("/api/v1/segments/%d", segID), e.samKey, ""); v["count"] != 1.0 {
			t.Errorf("sam's saved count: %v, want 1", v["count"])
		}
		if ids := idsIn(must(200, "GET", fmt.Sprintf("/api/v1/segments/%d/members", segID), e.samKey, ""), "customers"); !slices.Equal(ids, []int64{mine}) {
			t.Errorf("sam's members: %v, want only %d", ids, mine)
		}
		if rec := e.do("GET", fmt.Sprintf("/api/v1/segments/%d/explain?customer=%d", segID, theirs), e.samKey, nil, ""); rec.Code != http.StatusNotFound {
			t.Errorf("sam explains another's customer: %d, want 404", rec.Code)
		}
		for _, v := range must(200, "GET", "/api/v1/segments", e.samKey, "")["segments"].([]any) {
			if c := v.(map[string]any)["count"]; c != 1.0 {
				t.Errorf("sam's segment list count %v, want 1", c)
			}
		}

		// Export: sales may not; a custom role with own scope and segments.export exports
		// only its own customers, masked without customers.reveal.
		if rec := e.do("GET", fmt.Sprintf("/api/v1/segments/%d/export", segID), e.samKey, nil, ""); rec.Code != http.StatusForbidden {
			t.Errorf("sam exports: %d, want 403", rec.Code)
		}
		must(201, "POST", "/api/v1/roles", e.keys[staff.Admin], `{"key":"exporter","name":"导出员","data_scope":"own","matrix":{"segments":["export"],"customers":["view"]}}`)
		// A key acts with its own role for the staff member behind it: sam, as an exporter.
		_, exporterKey, err := st.CreateKey(e.ctx, staff.APIKey, "exporter", "exporter", e.sam.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec := e.do("GET", fmt.Sprintf("/api/v1/segments/%d/export", segID), exporterKey, nil, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("exporter: %d %s", rec.Code, rec.Body)
		}
		recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(rec.Body.String(), "\ufeff"))).ReadAll()
		if err != nil || len(recs) != 2 || recs[1][0] != fmt.Sprint(mine) || recs[1][2] != "138****0001" || recs[1][3] != "j***@example.com" {
			t.Errorf("exporter's export: %q, %v; want only %d, masked", recs, err, mine)
		}

		// Analytics and models count only one's own.
		week := "from=" + time.Now().AddDate(0, 0, -3).Format("2006-01-02") + "&to=" + time.Now().AddDate(0, 0, 2).Format("2006-01-02")
		for key, want := range map[string]float64{e.samKey: 1, opKey: 2} {
			v := must(200, "GET", "/api/v1/analytics/metrics?"+week, key, "")
			if got := metric(t, v["total"], "new_customers"); got != want {
				t.Errorf("analytics new customers: %v, want %v", got, want)
			}
		}
		must(200, "POST", "/api/v1/models/rfm/run", opKey, "")
		for key, want := range map[string]float64{e.samKey: 1, opKey: 2} {
			v := must(200, "GET", "/api/v1/models/rfm", key, "")
			total := 0.0
			for _, c := range v["classes"].([]any) {
				total += c.(map[string]any)["count"].(float64)
			}
			if total != want {
				t.Errorf("RFM classes add up to %v customers, want %v", total, want)
			}
		}

		// The console: list, search, profile.
		list := e.do("GET", "/customers", "", e.sam, "")
		if body := list.Body.String(); list.Code != 200 || !strings.Contains(body, "客户甲") || strings.Contains(body, "客户乙") {
			t.Errorf("sam's console list: %d, shows 客户甲 %v, 客户乙 %v", list.Code, strings.Contains(body, "客户甲"), strings.Contains(body, "客户乙"))
		}
		if rec := e.do("GET", "/customers?q=13900000002", "", e.sam, ""); strings.Contains(rec.Body.String(), "客户乙") {
			t.Error("sam's console search shows 客户乙")
		}
		if rec := e.do("GET", fmt.Sprintf("/customers/%d", theirs), "", e.sam, ""); rec.Code != http.StatusNotFound {
			t.Errorf("sam's console profile of another's customer: %d, want 404", rec.Code)
		}
	})
}

// TestDepartmentScope: a custom role with the department scope sees the customers of everyone
// in its department and below, and nobody else's.
func TestDepartmentScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newMatrixEnv(t, st)
		admin := e.keys[staff.Admin]
		dept := func(body string) int64 {
			t.Helper()
			rec := e.do("POST", "/api/v1/departments", admin, nil, body)
			if rec.Code != http.StatusCreated {
				t.Fatalf("create department: %d %s", rec.Code, rec.Body)
			}
			return int64(jsonOf(t, rec)["id"].(float64))
		}
		sales := dept(`{"name":"销售部"}`)
		east := dept(fmt.Sprintf(`{"name":"华东组","parent_id":%d}`, sales))
		north := dept(`{"name":"华北组"}`)
		if rec := e.do("PATCH", fmt.Sprintf("/api/v1/staff/%d", e.sam.ID), admin, nil, fmt.Sprintf(`{"department_id":%d}`, east)); rec.Code != 200 {
			t.Fatalf("move sam: %d %s", rec.Code, rec.Body)
		}
		if rec := e.do("PATCH", fmt.Sprintf("/api/v1/staff/%d", e.sue.ID), admin, nil, fmt.Sprintf(`{"department_id":%d}`, north)); rec.Code != 200 {
			t.Fatalf("move sue: %d %s", rec.Code, rec.Body)
		}
		if rec := e.do("POST", "/api/v1/roles", admin, nil, `{"key":"sales_lead","name":"销售主管","data_scope":"department","matrix":{"customers":["view"],"segments":["view"]}}`); rec.Code != 201 {
			t.Fatalf("create role: %d %s", rec.Code, rec.Body)
		}
		_, leadKey := e.member("lead", "sales_lead", sales)
		rec := e.do("GET", "/api/v1/customers", leadKey, nil, "")
		if ids := idsIn(jsonOf(t, rec), "customers"); !slices.Equal(ids, []int64{e.mine}) {
			t.Errorf("the 销售部 lead sees %v, want only sam's %d", ids, e.mine)
		}
		if rec := e.do("GET", fmt.Sprintf("/api/v1/customers/%d", e.theirs), leadKey, nil, ""); rec.Code != http.StatusNotFound {
			t.Errorf("the lead opens sue's customer: %d, want 404", rec.Code)
		}
		if rec := e.do("POST", "/api/v1/segments/count", leadKey, nil, `{"tree":{"field":"created_at","cmp":"is_set"}}`); jsonOf(t, rec)["count"] != 1.0 {
			t.Errorf("the lead's count: %s, want 1", rec.Body)
		}
		// The matrix, not a role list, decides: no edit, no tags, no settings.
		for _, c := range []struct{ method, path, body string }{
			{"PATCH", fmt.Sprintf("/api/v1/customers/%d", e.mine), `{"name":"x"}`},
			{"GET", "/api/v1/tags", ""},
			{"GET", "/api/v1/keys", ""},
			{"GET", "/api/v1/teleport-unknown-area", ""},
		} {
			if rec := e.do(c.method, c.path, leadKey, nil, c.body); rec.Code != http.StatusForbidden && rec.Code != http.StatusNotFound {
				t.Errorf("the lead %s %s: %d, want 403", c.method, c.path, rec.Code)
			}
		}
		me := jsonOf(t, e.do("GET", "/api/v1/me", leadKey, nil, ""))
		perms := me["permissions"].(map[string]any)
		if me["data_scope"] != "department" || fmt.Sprint(perms["permissions"]) != "[customers.view segments.view]" || perms["masked"] != true {
			t.Errorf("/me: %v", me)
		}
		// Moving sue into the subtree widens the lead's scope on the next request.
		if rec := e.do("PATCH", fmt.Sprintf("/api/v1/staff/%d", e.sue.ID), admin, nil, fmt.Sprintf(`{"department_id":%d}`, sales)); rec.Code != 200 {
			t.Fatalf("move sue: %d %s", rec.Code, rec.Body)
		}
		if ids := idsIn(jsonOf(t, e.do("GET", "/api/v1/customers", leadKey, nil, "")), "customers"); len(ids) != 2 {
			t.Errorf("after sue joined 销售部 the lead sees %v, want both", ids)
		}
	})
}

// TestMaskingAndReveal: without customers.reveal phones and emails are masked in the API and
// the console; reveal shows them in full and is audited.
func TestMaskingAndReveal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newMatrixEnv(t, st)
		get := func(key, target string) map[string]any {
			t.Helper()
			rec := e.do("GET", target, key, nil, "")
			if rec.Code != 200 {
				t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
			}
			return jsonOf(t, rec)
		}
		detail := get(e.samKey, fmt.Sprintf("/api/v1/customers/%d", e.mine))
		if detail["phone"] != "138****0001" || detail["email"] != "j***@example.com" {
			t.Errorf("sam's detail: phone %v email %v, want masked", detail["phone"], detail["email"])
		}
		list := get(e.samKey, "/api/v1/customers")["customers"].([]any)[0].(map[string]any)
		if list["phone"] != "138****0001" {
			t.Errorf("sam's list: phone %v, want masked", list["phone"])
		}
		if op := get(e.keys[staff.Operator], fmt.Sprintf("/api/v1/customers/%d", e.mine)); op["phone"] != "13800000001" {
			t.Errorf("operator's detail: phone %v, want in full", op["phone"])
		}
		page := e.do("GET", fmt.Sprintf("/customers/%d", e.mine), "", e.sam, "").Body.String()
		if !strings.Contains(page, "138****0001") || strings.Contains(page, "13800000001") || strings.Contains(page, "jia@example.com") {
			t.Error("sam's console profile shows the phone or email unmasked")
		}
		if rec := e.do("POST", fmt.Sprintf("/api/v1/customers/%d/reveal", e.mine), e.samKey, nil, ""); rec.Code != http.StatusForbidden {
			t.Errorf("sam reveals: %d, want 403", rec.Code)
		}
		rec := e.do("POST", fmt.Sprintf("/api/v1/customers/%d/reveal", e.theirs), e.keys[staff.Operator], nil, "")
		if v := jsonOf(t, rec); rec.Code != 200 || v["phone"] != "13900000002" || v["email"] != "yi@example.com" {
			t.Errorf("operator reveals: %d %v", rec.Code, v)
		}
		page2, err := st.ListAudit(e.ctx, store.AuditQuery{Action: "customer.reveal"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page2.Entries) != 1 || page2.Entries[0].Target != fmt.Sprintf("customer:%d", e.theirs) || page2.Entries[0].StaffID != e.members[staff.Operator].ID {
			t.Errorf("audit of the reveal: %+v", page2.Entries)
		}
	})
}
