package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Authorisation through the permission matrix. Every API and console route needs one cell of
// the matrix (area × action), derived from its path and method by routePermission so that a
// new route is covered without touching the route table: the area from the first path segment
// (routeAreas), the action from the method (GET reads: view; anything else: edit) or a last
// segment "export", and routeOverrides for the routes that do not fit the rule. A route whose
// area is unknown is refused to custom roles (built-in roles keep their Roles list): the matrix
// test fails on it until routeAreas names its area.

// routeAreas maps the first segment after /api/v1/ (or / for the console) to an area. The
// empty area marks routes any signed-in principal may use (scoped where they return data).
var routeAreas = map[string]staff.Area{
	"":                "", // the console's 工作台
	"me":              "",
	"tasks":           "", // everyone's own task inbox
	"customers":       staff.AreaCustomers,
	"pool":            staff.AreaCustomers,
	"transfers":       staff.AreaCustomers,
	"attributes":      staff.AreaTags,
	"tag-groups":      staff.AreaTags,
	"tags":            staff.AreaTags,
	"tag-rules":       staff.AreaTags,
	"segments":        staff.AreaSegments,
	"models":          staff.AreaModels,
	"gates":           staff.AreaModels, // price gates read member points and tiers
	"sops":            staff.AreaSOP,
	"sop":             staff.AreaSOP,
	"broadcasts":      staff.AreaBroadcasts,
	"content":         staff.AreaContent,
	"contents":        staff.AreaContent,
	"content-folders": staff.AreaContent,
	"content-images":  staff.AreaContent,
	"personas":        staff.AreaContent,
	"channel-codes":   staff.AreaEngage,
	"surveys":         staff.AreaEngage,
	"groups":          staff.AreaEngage,
	"checkins":        staff.AreaEngage,
	"referrals":       staff.AreaEngage,
	"engage":          staff.AreaEngage,
	"analytics":       staff.AreaAnalytics,
	"metrics":         staff.AreaAnalytics,
	"cohorts":         staff.AreaAnalytics,
	"funnels":         staff.AreaAnalytics,
	"goals":           staff.AreaAnalytics,
	"reports":         staff.AreaAnalytics,
	"settings":        staff.AreaSettings,
	"keys":            staff.AreaSettings,
	"wecom":           staff.AreaSettings,
	"staff":           staff.AreaStaff,
	"departments":     staff.AreaStaff,
	"roles":           staff.AreaStaff,
	"audit":           staff.AreaAudit,
}

// open is the permission of routes every signed-in principal may use.
var open = staff.Permission{}

// routeOverrides are the routes the path-and-method rule gets wrong, by "METHOD pattern".
var routeOverrides = map[string]staff.Permission{
	// Reads sent as POST (a tree or funnel in the body).
	"POST /api/v1/segments/count":   staff.Perm(staff.AreaSegments, staff.View),
	"POST /api/v1/segments/explain": staff.Perm(staff.AreaSegments, staff.View),
	"POST /api/v1/analytics/funnel": staff.Perm(staff.AreaAnalytics, staff.View),
	"POST /api/v1/funnels":          staff.Perm(staff.AreaAnalytics, staff.View),
	// Giving customers owners, one or many, and moving a leaver's customers.
	"PUT /api/v1/customers/{id}/owner": staff.Perm(staff.AreaCustomers, staff.Assign),
	"POST /api/v1/customers/owner":     staff.Perm(staff.AreaCustomers, staff.Assign),
	"GET /api/v1/transfers":            staff.Perm(staff.AreaCustomers, staff.Assign),
	"POST /api/v1/transfers":           staff.Perm(staff.AreaCustomers, staff.Assign),
	"GET /api/v1/transfers/{id}":       staff.Perm(staff.AreaCustomers, staff.Assign),
	"PUT /api/v1/pool/config":          staff.Perm(staff.AreaCustomers, staff.Assign),
	"POST /api/v1/pool/claim":          staff.Perm(staff.AreaCustomers, staff.Edit),
	"POST /api/v1/pool/release":        staff.Perm(staff.AreaCustomers, staff.Edit),
	"GET /transfers":                   staff.Perm(staff.AreaCustomers, staff.Assign),
	"POST /transfers":                  staff.Perm(staff.AreaCustomers, staff.Assign),
	"GET /transfers/{id}":              staff.Perm(staff.AreaCustomers, staff.Assign),
	// The weekly report's recipients and schedule are set by those who edit analytics.
	"GET /api/v1/reports/weekly/settings": staff.Perm(staff.AreaAnalytics, staff.Edit),
	// Channel codes carry the WeCom contact-me configuration: managed by their editors.
	"GET /api/v1/channel-codes":            staff.Perm(staff.AreaEngage, staff.Edit),
	"GET /api/v1/channel-codes/{id}":       staff.Perm(staff.AreaEngage, staff.Edit),
	"GET /api/v1/channel-codes/{id}/stats": staff.Perm(staff.AreaEngage, staff.Edit),
	// Privacy requests (erasure, right of access) are the data controller's: admins.
	"DELETE /api/v1/customers/{id}":     staff.Perm(staff.AreaSettings, staff.Edit),
	"GET /api/v1/customers/{id}/export": staff.Perm(staff.AreaSettings, staff.Edit),
	// Showing a customer's phone and email in full.
	"POST /api/v1/customers/{id}/reveal": staff.Perm(staff.AreaCustomers, staff.Reveal),
	// Who changed a segment when, and the models' settings and whole-base analyses, are for
	// those who edit them.
	"GET /api/v1/segments/{id}/history":      staff.Perm(staff.AreaSegments, staff.Edit),
	"GET /api/v1/models/pareto":              staff.Perm(staff.AreaModels, staff.Edit),
	"GET /api/v1/tag-rules/{id}/backfill":    staff.Perm(staff.AreaTags, staff.View),
	"POST /api/v1/tag-rules/{id}/backfill":   staff.Perm(staff.AreaTags, staff.Edit),
	"GET /api/v1/customers/{id}/models":      staff.Perm(staff.AreaCustomers, staff.View),
	"GET /api/v1/customers/{id}/tags":        staff.Perm(staff.AreaCustomers, staff.View),
	"GET /api/v1/customers/{id}/tag-history": staff.Perm(staff.AreaCustomers, staff.View),
	// Lists every signed-in person needs: owners to pick, fields to fill, the org chart.
	"GET /api/v1/staff":            open,
	"GET /api/v1/attributes":       open,
	"GET /api/v1/departments":      open,
	"GET /api/v1/departments/{id}": open,
	// The SOP list and the SOP console pages are for those who edit SOPs.
	"GET /api/v1/sops": staff.Perm(staff.AreaSOP, staff.View),
	// Console: the tag and segment pages are editors (the API serves readers).
	"GET /tags":                    staff.Perm(staff.AreaTags, staff.Edit),
	"GET /tags/rules":              staff.Perm(staff.AreaTags, staff.Edit),
	"GET /tags/rules/new":          staff.Perm(staff.AreaTags, staff.Edit),
	"GET /tags/rules/{id}":         staff.Perm(staff.AreaTags, staff.Edit),
	"GET /tags/groups/{id}/delete": staff.Perm(staff.AreaTags, staff.Edit),
	"GET /segments":                staff.Perm(staff.AreaSegments, staff.Edit),
	"GET /segments/new":            staff.Perm(staff.AreaSegments, staff.Edit),
	"GET /segments/{id}":           staff.Perm(staff.AreaSegments, staff.Edit),
	"GET /settings":                staff.Perm(staff.AreaSettings, staff.View),
	"POST /logout":                 open,
	"POST /customers/{id}/reveal":  staff.Perm(staff.AreaCustomers, staff.Reveal),
}

// routePerm is what a route needs: a cell of the matrix (zero: any signed-in principal), or
// unknown when its area could not be told from its path.
type routePerm struct {
	Perm    staff.Permission
	Unknown bool
}

// routePermission derives the permission of a route from its method and net/http pattern, for
// the API (/api/v1/…) and the console (/…) alike.
func routePermission(method, pattern string) routePerm {
	key := method + " " + pattern
	if p, ok := routeOverrides[key]; ok {
		return routePerm{Perm: p}
	}
	rest := strings.TrimPrefix(pattern, "/api/v1")
	segs := strings.Split(strings.Trim(strings.TrimSuffix(rest, "{$}"), "/"), "/")
	first := segs[0]
	if first == "settings" && len(segs) > 1 && rest == pattern {
		first = segs[1] // console: /settings/staff, /settings/roles … name their own area
	}
	area, ok := routeAreas[first]
	if !ok {
		return routePerm{Unknown: true}
	}
	if area == "" {
		return routePerm{}
	}
	action := staff.Edit
	switch {
	case segs[len(segs)-1] == "export":
		action = staff.Export
	case (method == http.MethodGet || method == http.MethodHead) && area == staff.AreaModels &&
		(segs[len(segs)-1] == "config" || segs[len(segs)-1] == "schedule" || segs[len(segs)-1] == "tags"):
		action = staff.Edit // a model's settings are for those who run it
	case method == http.MethodGet || method == http.MethodHead:
		action = staff.View
	}
	p := staff.Perm(area, action)
	if !p.Valid() { // e.g. an export in an area without one: editing is the nearest
		p = staff.Perm(area, staff.Edit)
	}
	return routePerm{Perm: p}
}

type routePermKey struct{}

// withRoutePermission puts a route's permission in its requests' context for the auth
// wrappers (api, console) to check once they know the principal.
func withRoutePermission(method, pattern string, h http.HandlerFunc) http.HandlerFunc {
	rp := routePermission(method, pattern)
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(context.WithValue(r.Context(), routePermKey{}, rp)))
	}
}

// splitPattern is a mux pattern's method ("" for any) and path.
func splitPattern(pattern string) (string, string) {
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, p
	}
	return "", pattern
}

// resolveRole loads what the principal's role allows and resolves its data scope: a built-in
// role from its preset, a custom role from the store; the department scope becomes the staff
// of the member's department and every department below it. An unknown role (a custom role
// deleted under a key) is allowed nothing and sees nobody.
func (s *Server) resolveRole(r *http.Request, p *Principal) error {
	def, err := s.Store.RoleByKey(r.Context(), p.Role)
	if errors.Is(err, store.ErrNotFound) {
		def = &staff.RoleDef{Key: p.Role, Matrix: staff.Matrix{}, Scope: staff.DataOwn}
		p.Def, p.scope, p.resolved = def, staff.OwnersScope(), true
		return nil
	}
	if err != nil {
		return err
	}
	p.Def, p.resolved = def, true
	me := p.StaffID()
	switch def.Scope {
	case staff.DataAll:
		p.scope = staff.CustomerScope{}
	case staff.DataDepartment:
		m := p.Staff
		if m == nil && me != 0 {
			if m, err = s.Store.StaffByID(r.Context(), me); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		ids := []int64{}
		if m != nil && m.DepartmentID != 0 {
			if ids, err = s.Store.DepartmentStaffIDs(r.Context(), m.DepartmentID); err != nil {
				return err
			}
		}
		if me != 0 {
			ids = append(ids, me) // one's own customers, whatever the department
		}
		p.scope = staff.OwnersScope(ids...)
	default:
		if me != 0 {
			p.scope = staff.OwnersScope(me)
		} else {
			p.scope = staff.OwnersScope()
		}
	}
	return nil
}

// authorized reports whether p may use the route of r: the route's cell of the matrix, and for
// a built-in role also the route's Roles list as before the matrix (the matrix test keeps the
// two in step). Custom roles are judged by the matrix alone and refused on routes whose area
// is unknown.
func (p *Principal) authorized(r *http.Request, roles []staff.Role) bool {
	rp, ok := r.Context().Value(routePermKey{}).(routePerm)
	if !ok { // a handler wrapped without a route: legacy roles only
		rp = routePerm{Unknown: true}
	}
	return p.permits(rp, roles)
}

// mayOpen reports whether p may use the route method path with these Roles (the console's
// navigation shows only what one may open).
func (p *Principal) mayOpen(method, path string, roles []staff.Role) bool {
	return p.permits(routePermission(method, path), roles)
}

func (p *Principal) permits(rp routePerm, roles []staff.Role) bool {
	if p.Def == nil {
		return p.Can(roles...)
	}
	if p.Def.BuiltIn && !p.Can(roles...) {
		return false
	}
	if rp.Unknown {
		return p.Def.BuiltIn
	}
	return p.Def.Allows(rp.Perm)
}

// Allows reports whether the principal's role grants p (the zero permission: always).
func (p *Principal) Allows(perm staff.Permission) bool {
	if p.Def == nil {
		def := staff.Preset(p.Role)
		return def != nil && def.Allows(perm)
	}
	return p.Def.Allows(perm)
}

// Scope is the principal's data scope: every customer, or the customers of its owners (one's
// own; a department subtree's staff).
func (p *Principal) Scope() staff.CustomerScope {
	if p.resolved {
		return p.scope
	}
	return staff.OwnerScope(p.ScopeOwnerID())
}

// ScopeOwnerID is the older single-owner form of the data scope, kept for code that takes one
// owner id: 0 for every customer, else the principal's own id (-2 when a key belongs to nobody
// and sees nobody). A department scope narrows to one's own here, never wider; code that can
// take a set of owners should use Scope.
func (p *Principal) ScopeOwnerID() int64 {
	all := p.Role != staff.Sales
	if p.resolved {
		all = p.scope.All()
	}
	if all {
		return 0
	}
	if id := p.StaffID(); id != 0 {
		return id
	}
	return -2
}

// Can reports whether the principal holds one of roles (admin can do everything; no roles:
// everyone). A custom role holds none of the built-in roles: it is judged by the matrix.
func (p *Principal) Can(roles ...staff.Role) bool {
	if p.Role == staff.Admin || len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

// passes is the role check of a console page wrapper: the built-in roles listed, or any custom
// role (the route's matrix cell already decided for it).
func (p *Principal) passes(roles []staff.Role) bool {
	if p.Def != nil && !p.Def.BuiltIn {
		return true
	}
	return p.Can(roles...)
}

// Reveals reports whether the principal sees phone numbers and emails in full.
func (p *Principal) Reveals() bool { return p.Allows(staff.Perm(staff.AreaCustomers, staff.Reveal)) }

// scopeKey is a data scope as a comparable string (for caches): "" for every customer.
func scopeKey(sc staff.CustomerScope) string {
	if sc.All() {
		return ""
	}
	var b strings.Builder
	b.WriteString("owners:")
	for _, id := range sc.Owners {
		b.WriteString(strconv.FormatInt(id, 10))
		b.WriteByte(',')
	}
	return b.String()
}
