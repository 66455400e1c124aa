package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/tag"
	"github.com/siyu-scrm/siyu/internal/tagrule"
)

// Tag rules over HTTP, and their back-fill jobs (tagrule.Jobs: asynchronous, one per rule at
// a time, state in memory).

// ruleBodyLimit is the largest rule body: a condition tree of the largest size, and room.
const ruleBodyLimit = segment.MaxBytes + 64<<10

// RuleMembers resolves a tag rule's condition to the customers who match it now (for
// tagrule.New): the audience engine when it is built, otherwise SQL on the store.
func (s *Server) RuleMembers(tree *segment.Node) ([]int64, error) { return s.ruleMembers(tree) }

func (s *Server) apiListTagRules(w http.ResponseWriter, r *http.Request) {
	rules, err := s.Store.TagRules(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

func (s *Server) apiGetTagRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	rule, err := s.Store.TagRule(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

// readRuleBody reads a rule body: 400 for what is not a JSON object, 413 when too large.
func readRuleBody(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	data, ok := readBody(w, r, ruleBodyLimit)
	if !ok {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		// Say why: "want a JSON object" misled for an object too deep to decode.
		writeError(w, http.StatusBadRequest, "invalid_json", "invalid JSON: "+strings.TrimPrefix(err.Error(), "json: "), "")
		return nil, false
	}
	if obj == nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "want a JSON object", "")
		return nil, false
	}
	for k := range obj {
		switch k {
		case "name", "enabled", "trigger", "actions":
		default:
			writeError(w, http.StatusBadRequest, "invalid_json", "unknown field "+strconv.Quote(k)+" (want name, enabled, trigger, actions)", k)
			return nil, false
		}
	}
	return obj, true
}

// parseRule turns a rule body into a rule (tag.ParseRule): a value of the wrong JSON type is
// 400, like any other JSON body; the rest is checked when the rule is saved.
func parseRule(w http.ResponseWriter, obj map[string]json.RawMessage) (*tag.Rule, bool) {
	data, err := json.Marshal(obj)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		return nil, false
	}
	rule, err := tag.ParseRule(data)
	if err != nil {
		var fe *customer.FieldError
		if errors.As(err, &fe) && fe.Field == "rule" {
			writeError(w, http.StatusBadRequest, "invalid_json", strings.TrimPrefix(fe.Reason, "invalid JSON: "), "")
			return nil, false
		}
		if errors.As(err, &fe) {
			writeError(w, http.StatusUnprocessableEntity, "invalid", fe.Reason, fe.Field)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error(), "")
		return nil, false
	}
	return rule, true
}

func (s *Server) apiCreateTagRule(w http.ResponseWriter, r *http.Request) {
	obj, ok := readRuleBody(w, r)
	if !ok {
		return
	}
	rule, ok := parseRule(w, obj)
	if !ok {
		return
	}
	if _, ok := obj["enabled"]; !ok {
		rule.Enabled = true // a new rule acts unless said otherwise
	}
	sch, err := s.Store.SegmentSchema(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	rule.CreatedBy = principalFrom(r).StaffID()
	if err := s.Store.CreateTagRule(r.Context(), rule, sch); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tag-rules/"+strconv.FormatInt(rule.ID, 10))
	writeJSON(w, http.StatusCreated, rule)
}

// apiUpdateTagRule replaces the fields the body names (name, enabled, trigger, actions: each
// whole) and keeps the others.
func (s *Server) apiUpdateTagRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	obj, ok := readRuleBody(w, r)
	if !ok {
		return
	}
	old, err := s.Store.TagRule(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	cur, err := json.Marshal(map[string]any{"name": old.Name, "enabled": old.Enabled, "trigger": old.Trigger, "actions": old.Actions})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(cur, &merged); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	for k, v := range obj {
		merged[k] = v
	}
	rule, ok := parseRule(w, merged)
	if !ok {
		return
	}
	rule.ID = id
	sch, err := s.Store.SegmentSchema(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.Store.UpdateTagRule(r.Context(), rule, sch); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) apiDeleteTagRule(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if st, ok := s.tagJobs.Status(id); ok && st.State == tagrule.JobRunning {
		writeError(w, http.StatusConflict, "conflict", "a back-fill of this rule is running (job "+strconv.FormatInt(st.ID, 10)+"): wait for it to end", "")
		return
	}
	if err := s.Store.DeleteTagRule(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiStartTagRuleBackfill(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	st, err := s.tagJobs.Start(r.Context(), id)
	if errors.Is(err, tagrule.ErrJobRunning) {
		writeError(w, http.StatusConflict, "conflict", "a back-fill of this rule is already running (job "+strconv.FormatInt(st.ID, 10)+")", "")
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tag-rules/"+strconv.FormatInt(id, 10)+"/backfill")
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) apiTagRuleBackfill(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	st, ok := s.tagJobs.Status(id)
	if !ok {
		if _, err := s.Store.TagRule(r.Context(), id); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no back-fill of this rule since the server started", "")
		return
	}
	writeJSON(w, http.StatusOK, st)
}
