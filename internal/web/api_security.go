package web

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// The API side of sign-in hardening and of staff changes' audit entries.

// apiMySessions is GET /api/v1/me/sessions: the caller's signed-in browsers.
func (s *Server) apiMySessions(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ListSessions(r.Context(), principalFrom(r).StaffID())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

// apiSignOutEverywhere is DELETE /api/v1/me/sessions: the caller's every browser session
// ends (API keys are revoked separately).
func (s *Server) apiSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	id := principalFrom(r).StaffID()
	if id == 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "this API key acts for no staff member", "")
		return
	}
	n, err := s.Store.DeleteStaffSessions(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.SignOutAll, fmt.Sprintf("staff:%d", id), map[string]any{"sessions": n})
	writeJSON(w, http.StatusOK, map[string]any{"signed_out": n})
}

// apiRevokeStaffSessions is DELETE /api/v1/staff/{id}/sessions (admins): sign someone out of
// every browser.
func (s *Server) apiRevokeStaffSessions(w http.ResponseWriter, r *http.Request) {
	m, ok := s.apiStaffMember(w, r)
	if !ok {
		return
	}
	id := m.ID
	n, err := s.Store.DeleteStaffSessions(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.SessionsRevoked, fmt.Sprintf("staff:%d", id), map[string]any{"sessions": n, "login": m.Login})
	writeJSON(w, http.StatusOK, map[string]any{"signed_out": n})
}

// apiStaffMember reads the staff member of the path's {id}, answering 404 when there is none.
func (s *Server) apiStaffMember(w http.ResponseWriter, r *http.Request) (*staff.Staff, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	m, err := s.Store.StaffByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	return m, true
}

// apiResetStaffTOTP is DELETE /api/v1/staff/{id}/totp (admins): turn someone's two-factor off
// after a lost phone; they can enrol again.
func (s *Server) apiResetStaffTOTP(w http.ResponseWriter, r *http.Request) {
	m, ok := s.apiStaffMember(w, r)
	if !ok {
		return
	}
	id := m.ID
	e := s.auditEntry(r, audit.TOTPDisabled, fmt.Sprintf("staff:%d", id), map[string]any{"by": "admin", "login": m.Login})
	if err := s.Store.DisableTOTP(r.Context(), id, &e); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// auditStaffChange writes what an update changed: the role (a permission change), access
// (disabled or enabled again, which also ended the sessions) and the profile.
func (s *Server) auditStaffChange(r *http.Request, before, after *staff.Staff) {
	target := fmt.Sprintf("staff:%d", after.ID)
	if before.Role != after.Role {
		s.audit(r, audit.RoleUpdate, target, map[string]any{"login": after.Login, "from": before.Role, "to": after.Role})
	}
	switch {
	case !before.Disabled && after.Disabled:
		s.audit(r, audit.StaffDisable, target, map[string]any{"login": after.Login})
	case before.Disabled && !after.Disabled:
		s.audit(r, audit.StaffEnable, target, map[string]any{"login": after.Login})
	}
	changed := map[string]any{}
	if before.Name != after.Name {
		changed["name"] = after.Name
	}
	if before.Email != after.Email {
		changed["email"] = after.Email
	}
	if before.Department != after.Department {
		changed["department"] = after.Department
	}
	if len(changed) > 0 {
		changed["login"] = after.Login
		s.audit(r, audit.StaffUpdate, target, changed)
	}
}

// auditKeyDetail describes a key in its audit entries.
func auditKeyDetail(k *staff.Key) map[string]any {
	d := map[string]any{"kind": k.Kind, "name": k.Name, "prefix": k.Prefix}
	if k.Role != "" {
		d["role"], d["scope"] = k.Role, k.Scope
	}
	if k.CreatedBy != 0 {
		d["acts_for"] = k.CreatedBy
	}
	if !k.ExpiresAt.IsZero() {
		d["expires_at"] = k.ExpiresAt
	}
	return d
}

// apiWeComSettings is the answer of GET /api/v1/settings/wecom: the corp id and API base, and
// which secrets are set — never their values.
type apiWeComSettings struct {
	CorpID            string   `json:"corp_id"`
	APIBase           string   `json:"api_base"`
	TokenSet          bool     `json:"token_set"`
	EncodingAESKeySet bool     `json:"encoding_aes_key_set"`
	SecretSet         bool     `json:"secret_set"`
	FromEnvironment   []string `json:"from_environment,omitempty"` // fields a SIYU_WECOM_* variable overrides
}

// weComFields maps the API's fields to settings and environment variables, and checks values.
var weComFields = []struct {
	field, setting, env string
	secret              bool
	valid               *regexp.Regexp
	reason              string
}{
	{"corp_id", "wecom.corp_id", "SIYU_WECOM_CORP_ID", false, regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`), "letters and digits, as shown under 我的企业 → 企业ID"},
	{"token", "wecom.token", "SIYU_WECOM_TOKEN", true, regexp.MustCompile(`^[A-Za-z0-9]{3,32}$`), "3 to 32 letters or digits, as set in the app's 接收消息 settings"},
	{"encoding_aes_key", "wecom.encoding_aes_key", "SIYU_WECOM_ENCODING_AES_KEY", true, regexp.MustCompile(`^[A-Za-z0-9]{43}$`), "exactly 43 letters or digits (EncodingAESKey)"},
	{"secret", "wecom.secret", "SIYU_WECOM_SECRET", true, regexp.MustCompile(`^[\x21-\x7e]{1,128}$`), "the app's Secret: up to 128 characters without spaces"},
	{"api_base", "wecom.api_base", "SIYU_WECOM_API_BASE", false, regexp.MustCompile(`^https?://[^\s]{1,200}$`), "an http(s) URL"},
}

func (s *Server) apiGetWeComSettings(w http.ResponseWriter, r *http.Request) {
	out := apiWeComSettings{}
	for _, f := range weComFields {
		v, _, err := s.Store.Setting(r.Context(), f.setting)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if os.Getenv(f.env) != "" {
			out.FromEnvironment = append(out.FromEnvironment, f.field)
		}
		switch f.field {
		case "corp_id":
			out.CorpID = v
		case "api_base":
			out.APIBase = v
		case "token":
			out.TokenSet = v != ""
		case "encoding_aes_key":
			out.EncodingAESKeySet = v != ""
		case "secret":
			out.SecretSet = v != ""
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiPutWeComSettings is PUT /api/v1/settings/wecom: set (or, with "", clear) the WeCom
// integration's fields; absent fields stay. All change in one transaction with one
// settings.secret_change audit entry naming the fields, never the values.
func (s *Server) apiPutWeComSettings(w http.ResponseWriter, r *http.Request) {
	var body map[string]*string
	if !decodeJSON(w, r, 64<<10, &body) {
		return
	}
	values := map[string]string{}
	var changed []string
	for name := range body {
		known := false
		for _, f := range weComFields {
			known = known || f.field == name
		}
		if !known {
			writeError(w, http.StatusBadRequest, "invalid_json", "unknown field "+strconv.Quote(name), name)
			return
		}
	}
	for _, f := range weComFields {
		v, ok := body[f.field]
		if !ok || v == nil {
			continue
		}
		val := strings.TrimSpace(*v)
		if val != "" && !f.valid.MatchString(val) {
			writeError(w, http.StatusUnprocessableEntity, "invalid", f.reason, f.field)
			return
		}
		values[f.setting] = val
		changed = append(changed, f.field)
	}
	if len(changed) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "give at least one of corp_id, token, encoding_aes_key, secret, api_base", "")
		return
	}
	e := s.auditEntry(r, audit.SecretChange, "settings:wecom", map[string]any{"fields": changed})
	if err := s.Store.SetSettings(r.Context(), values, &e); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.apiGetWeComSettings(w, r)
}
