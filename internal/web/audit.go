package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The audit log from the HTTP side: one helper that makes an entry from a request (who, from
// where, with what browser), a table of the routes whose success is an audited action, the
// admin-only API that searches the log, and the console page under 设置 → 审计日志.

// auditEntry makes an entry for the request's principal (none before sign-in), client address
// and user agent.
func (s *Server) auditEntry(r *http.Request, action, target string, detail map[string]any) store.AuditEntry {
	e := store.AuditEntry{Action: action, Target: target, IP: s.clientIP(r), UserAgent: r.UserAgent(), Detail: detail}
	if p := principalFrom(r); p != nil {
		e.StaffID = p.StaffID()
		if p.Key != nil {
			e.KeyID = p.Key.ID
		}
	} else if h := auditHolderFrom(r.Context()); h != nil && h.p != nil {
		e.StaffID = h.p.StaffID()
		if h.p.Key != nil {
			e.KeyID = h.p.Key.ID
		}
	}
	return e
}

// audit writes an entry on its own transaction. A failure is logged at ERROR (an action that
// already happened must still answer) and returned for callers that refuse to go on without it.
func (s *Server) audit(r *http.Request, action, target string, detail map[string]any) error {
	e := s.auditEntry(r, action, target, detail)
	if err := s.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.Log.Error("audit log write failed", "action", action, "target", target, "staff", e.StaffID, "err", err)
		return err
	}
	return nil
}

// auditRoute is what a successful request to a route records.
type auditRoute struct {
	Action string
	// Target is the entry's target, with {name} replaced by the path value (tag:{id}).
	Target string
	// When, if set, decides whether this request is the audited kind (a CSV download of a
	// report that also answers JSON).
	When func(r *http.Request) bool
	// Redirected keeps only answers that redirect: a console form that deletes redirects when
	// done and answers 200 with a confirmation page when it asks first.
	Redirected bool
	// Request records the request's JSON body or form (passwords and CSRF tokens left out);
	// Result records a small JSON answer; Headers records answer headers (X-Segment-Count).
	Request, Result bool
	Headers         []string
}

func wantsCSV(r *http.Request) bool { return r.URL.Query().Get("format") == "csv" }

// auditRoutes lists the routes, API and console, whose success writes an audit entry, by their
// mux pattern. Handlers that know more (sign-in, keys, staff) write their own entries instead.
// TestAuditCoversDeletesAndExports keeps every DELETE, delete form and export in this table.
var auditRoutes = map[string]auditRoute{
	"DELETE /api/v1/tags/{id}":               {Action: audit.TagDelete, Target: "tag:{id}"},
	"DELETE /api/v1/tag-groups/{id}":         {Action: audit.TagGroupDelete, Target: "tag_group:{id}"},
	"DELETE /api/v1/tag-rules/{id}":          {Action: audit.TagRuleDelete, Target: "tag_rule:{id}"},
	"DELETE /api/v1/segments/{id}":           {Action: audit.SegmentDelete, Target: "segment:{id}"},
	"DELETE /api/v1/sops/{id}":               {Action: audit.SOPDelete, Target: "sop:{id}"},
	"DELETE /api/v1/surveys/{id}":            {Action: audit.SurveyDelete, Target: "survey:{id}"},
	"DELETE /api/v1/contents/{id}":           {Action: audit.ContentDelete, Target: "content:{id}"},
	"DELETE /api/v1/content-folders/{id}":    {Action: audit.ContentDelete, Target: "content_folder:{id}"},
	"DELETE /api/v1/personas/{id}":           {Action: audit.ContentDelete, Target: "persona:{id}"},
	"DELETE /api/v1/channel-codes/{id}":      {Action: audit.ChannelDelete, Target: "channel_code:{id}"},
	"DELETE /api/v1/departments/{id}":        {Action: audit.DeptDelete, Target: "department:{id}"},
	"DELETE /api/v1/gates/{id}":              {Action: audit.GateDelete, Target: "gate:{id}"},
	"DELETE /api/v1/goals/{id}":              {Action: audit.GoalDelete, Target: "goal:{id}"},
	"POST /api/v1/tags/assign":               {Action: audit.TagsBulkAssign, Target: "tags", Request: true, Result: true},
	"POST /api/v1/tags/remove":               {Action: audit.TagsBulkRemove, Target: "tags", Request: true, Result: true},
	"GET /api/v1/segments/{id}/export":       {Action: audit.CustomerExport, Target: "segment:{id}", Headers: []string{"X-Segment-Count", "Content-Type"}},
	"GET /api/v1/surveys/{id}/export":        {Action: audit.CustomerExport, Target: "survey:{id}", Headers: []string{"Content-Type"}},
	"GET /api/v1/analytics/metrics":          {Action: audit.AnalyticsExport, Target: "analytics:metrics", When: wantsCSV},
	"GET /api/v1/analytics/cohorts":          {Action: audit.AnalyticsExport, Target: "analytics:cohorts", When: wantsCSV},
	"POST /api/v1/analytics/funnel":          {Action: audit.AnalyticsExport, Target: "analytics:funnel", When: wantsCSV},
	"POST /tags/tag/{id}/delete":             {Action: audit.TagDelete, Target: "tag:{id}", Redirected: true},
	"POST /tags/groups/{id}/delete":          {Action: audit.TagGroupDelete, Target: "tag_group:{id}", Redirected: true},
	"POST /tags/rules/{id}/delete":           {Action: audit.TagRuleDelete, Target: "tag_rule:{id}", Redirected: true},
	"POST /segments/{id}/delete":             {Action: audit.SegmentDelete, Target: "segment:{id}", Redirected: true},
	"POST /surveys/{id}/delete":              {Action: audit.SurveyDelete, Target: "survey:{id}", Redirected: true},
	"POST /channel-codes/{id}/delete":        {Action: audit.ChannelDelete, Target: "channel_code:{id}", Redirected: true},
	"POST /settings/departments/{id}/delete": {Action: audit.DeptDelete, Target: "department:{id}", Redirected: true},
	"GET /surveys/{id}/export":               {Action: audit.CustomerExport, Target: "survey:{id}", Headers: []string{"Content-Type"}},
}

// auditedByHandler are the deletions and exports whose handlers write their own, richer entry
// (in the action's transaction where it matters); notAudited are the ones left out on purpose.
// TestAuditCoversDeletesAndExports checks that every DELETE route and export is in one of the
// three lists.
var (
	auditedByHandler = []string{
		"DELETE /api/v1/customers/{id}",                // privacy: customer.delete in the erasure's transaction
		"GET /api/v1/customers/{id}/export",            // privacy: customer.export (right of access)
		"DELETE /api/v1/keys/{id}",                     // key.revoke
		"DELETE /api/v1/roles/{id}",                    // role.update (change: delete)
		"DELETE /api/v1/me/sessions",                   // auth.sign_out_all
		"DELETE /api/v1/staff/{id}/sessions",           // auth.sessions_revoked
		"DELETE /api/v1/staff/{id}/totp",               // auth.totp_disable
		"POST /settings/roles/{id}/delete",             // role.update (change: delete)
		"POST /settings/keys/{id}/revoke",              // key.revoke
		"POST /settings/staff/{id}/sessions/revoke",    // auth.sessions_revoked
		"POST /account/security/sessions/{sid}/revoke", // auth.sign_out (one device)
	}
	notAudited = []string{
		"DELETE /api/v1/customers/{id}/tags/{tagId}", // one tag off one customer: the customer's tag history records it
		"POST /customers/{id}/tags/{tagId}/remove",   // the same from the profile page
	}
)

// auditHolder carries the principal out of the auth wrapper to the audit wrapper around it.
type auditHolder struct{ p *Principal }

type auditHolderKey struct{}

func auditHolderFrom(ctx context.Context) *auditHolder {
	h, _ := ctx.Value(auditHolderKey{}).(*auditHolder)
	return h
}

// auditWriter records the status and, when asked, the first bytes of a JSON answer.
type auditWriter struct {
	http.ResponseWriter
	code int
	keep bool
	buf  bytes.Buffer
}

const auditCaptureLimit = 4 << 10

func (w *auditWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.keep && w.buf.Len() < auditCaptureLimit {
		w.buf.Write(b[:min(len(b), auditCaptureLimit-w.buf.Len())])
	}
	return w.ResponseWriter.Write(b)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// audited wraps the handler of pattern so that a successful request (status below 400) writes
// the entry auditRoutes lists for it; routes not in the table pass through untouched.
func (s *Server) audited(pattern string, h http.Handler) http.Handler {
	spec, ok := auditRoutes[pattern]
	if !ok {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		holder := &auditHolder{}
		r = r.WithContext(context.WithValue(r.Context(), auditHolderKey{}, holder))
		var reqBody []byte
		if spec.Request && r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			reqBody, _ = io.ReadAll(io.LimitReader(r.Body, auditCaptureLimit+1))
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(reqBody), r.Body), r.Body}
		}
		aw := &auditWriter{ResponseWriter: w, keep: spec.Result}
		h.ServeHTTP(aw, r)
		if aw.code == 0 {
			aw.code = http.StatusOK
		}
		if aw.code >= 400 || holder.p == nil || (spec.When != nil && !spec.When(r)) || (spec.Redirected && aw.code != http.StatusSeeOther) {
			return
		}
		detail := map[string]any{"route": pattern, "status": aw.code}
		if q := r.URL.RawQuery; q != "" {
			detail["query"] = q
		}
		if spec.Request {
			switch {
			case len(reqBody) > auditCaptureLimit:
				detail["request"] = map[string]any{"truncated": true}
			case len(reqBody) > 0:
				var v any
				if json.Unmarshal(reqBody, &v) == nil {
					detail["request"] = v
				}
			case r.PostForm != nil:
				form := map[string]any{}
				for k, vs := range r.PostForm {
					if k == "csrf" || strings.Contains(strings.ToLower(k), "password") {
						continue
					}
					form[k] = strings.Join(vs, ",")
				}
				detail["form"] = form
			}
		}
		if spec.Result && aw.buf.Len() > 0 && aw.buf.Len() < auditCaptureLimit {
			var v any
			if json.Unmarshal(aw.buf.Bytes(), &v) == nil {
				detail["result"] = v
			}
		}
		for _, name := range spec.Headers {
			if v := aw.Header().Get(name); v != "" {
				detail[strings.ToLower(name)] = v
			}
		}
		target := spec.Target
		for {
			i := strings.Index(target, "{")
			j := strings.Index(target, "}")
			if i < 0 || j < i {
				break
			}
			target = target[:i] + r.PathValue(target[i+1:j]) + target[j+1:]
		}
		s.audit(withPrincipal(r, holder.p), spec.Action, target, detail)
	})
}

// apiListAudit is GET /api/v1/audit: the log, newest first, searchable (admins only).
func (s *Server) apiListAudit(w http.ResponseWriter, r *http.Request) {
	q, field, msg := auditQueryFrom(r)
	if field != "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", msg, field)
		return
	}
	page, err := s.Store.ListAudit(r.Context(), q)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// auditQueryFrom reads the filters of the API and the console page: staff_id, key_id, action,
// target, from, to (RFC 3339 or YYYY-MM-DD; to is exclusive, a date means through that day),
// q, cursor, limit. A bad one is reported by field and message.
func auditQueryFrom(r *http.Request) (q store.AuditQuery, field, msg string) {
	v := r.URL.Query()
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"staff_id", &q.StaffID}, {"key_id", &q.KeyID}} {
		if s := v.Get(f.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return q, f.name, f.name + " must be a positive integer"
			}
			*f.dst = n
		}
	}
	q.Action, q.Target, q.Text, q.Cursor = strings.TrimSpace(v.Get("action")), strings.TrimSpace(v.Get("target")), v.Get("q"), v.Get("cursor")
	if len(q.Text) > 200 {
		return q, "q", "at most 200 bytes"
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
		end  bool
	}{{"from", &q.From, false}, {"to", &q.To, true}} {
		s := strings.TrimSpace(v.Get(f.name))
		if s == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			*f.dst = t
			continue
		}
		d, err := time.ParseInLocation(time.DateOnly, s, time.Local)
		if err != nil {
			return q, f.name, f.name + " must be a date (2025-06-01) or an RFC 3339 time"
		}
		if f.end {
			d = d.AddDate(0, 0, 1)
		}
		*f.dst = d
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, "to", "to must be after from"
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, "limit", "limit must be between 1 and 500"
		}
		q.Limit = n
	}
	return q, "", ""
}
