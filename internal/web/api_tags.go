package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Tags over HTTP: groups and tags, a customer's tags and history, and bulk assignment to a
// list of customers, a segment or an uploaded CSV. Every change records the acting staff
// member with reason manual.

// tagEditors may define tags and tag rules and change tags in bulk; sales change the tags of
// their own customers one customer at a time (the single-customer routes use writers).
var tagEditors = []staff.Role{staff.Operator}

// Bulk assignment limits.
const (
	bulkJSONLimit = 16 << 20 // a JSON body with a list of customer ids
	bulkCSVLimit  = 32 << 20 // an uploaded CSV of customer ids
	// bulkTagChunk is how many customers one transaction of a bulk change covers.
	bulkTagChunk = 10_000
	// maxReported bounds the unknown ids listed in an answer (the count is always exact).
	maxReported = 1000
)

// manualCause is the cause of a change made by the request's principal.
func manualCause(r *http.Request, ref string) tag.Cause {
	return tag.Cause{By: principalFrom(r).StaffID(), Reason: tag.ReasonManual, Ref: ref}
}

// writeTagError is writeStoreError with the store's conflicts explained: a single-choice
// group customers would break, a tag a rule uses.
func (s *Server) writeTagError(w http.ResponseWriter, r *http.Request, err error) {
	var ex *tag.ExclusiveConflictError
	switch {
	case errors.As(err, &ex):
		writeError(w, http.StatusConflict, "conflict", ex.Error(), "")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "), "")
	default:
		s.writeStoreError(w, r, err)
	}
}

// refuseRuleTags answers 409 naming how many rules use any of ids, which cannot be deleted
// while they do.
func (s *Server) refuseRuleTags(w http.ResponseWriter, r *http.Request, ids []int64) bool {
	rules, err := s.Store.TagRules(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return false
	}
	var using []string
	for _, rule := range rules {
		for _, id := range rule.Actions.TagIDs() {
			if slices.Contains(ids, id) {
				using = append(using, fmt.Sprintf("%d %q", rule.ID, rule.Name))
				break
			}
		}
	}
	if len(using) == 0 {
		return true
	}
	what := "the tag is"
	if len(ids) > 1 {
		what = "the group's tags are"
	}
	writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("%s used by %d tag rules (%s): change or delete them first", what, len(using), strings.Join(using, ", ")), "")
	return false
}

// --- groups ---

func (s *Server) apiListTagGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := s.Store.ListTagGroups(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": groups})
}

// apiTagGroupBody is the body of POST /api/v1/tag-groups; PATCH takes the same fields, each
// optional, except position (creation only).
type apiTagGroupBody struct {
	Name      *string   `json:"name"`
	Kind      *tag.Kind `json:"kind"`
	Exclusive *bool     `json:"exclusive"`
	Position  *int      `json:"position"`
}

func (b *apiTagGroupBody) apply(g *tag.Group) {
	if b.Name != nil {
		g.Name = *b.Name
	}
	if b.Kind != nil {
		g.Kind = *b.Kind
	}
	if b.Exclusive != nil {
		g.Exclusive = *b.Exclusive
	}
}

func (s *Server) apiCreateTagGroup(w http.ResponseWriter, r *http.Request) {
	var b apiTagGroupBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	g := &tag.Group{}
	b.apply(g)
	if b.Position != nil {
		if *b.Position < 1 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "want 1 or more", "position")
			return
		}
		g.Position = *b.Position
	}
	if err := s.Store.CreateTagGroup(r.Context(), g); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	g.Tags = []tag.Tag{}
	w.Header().Set("Location", "/api/v1/tag-groups/"+strconv.FormatInt(g.ID, 10))
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) apiUpdateTagGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b apiTagGroupBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if b.Position != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "the order of groups is not changed here", "position")
		return
	}
	g, err := s.Store.TagGroup(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	b.apply(g)
	if err := s.Store.UpdateTagGroup(r.Context(), g); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// apiTagRemovals is the answer of a deletion: how many assignments it took away.
type apiTagRemovals struct {
	Removed int `json:"removed"`
}

func (s *Server) apiDeleteTagGroup(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "mode" && name != "into" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	d := tag.GroupDeletion{Mode: q.Get("mode"), Cause: manualCause(r, "")}
	switch d.Mode {
	case tag.DeleteTags:
		if q.Has("into") {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "into goes with mode=move_tags", "into")
			return
		}
	case tag.MoveTags:
		into, err := strconv.ParseInt(q.Get("into"), 10, 64)
		if err != nil || into <= 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "move_tags needs into=GROUP_ID: the group the tags move to", "into")
			return
		}
		d.Into = into
	default:
		writeError(w, http.StatusUnprocessableEntity, "invalid",
			"say what becomes of the group's tags: mode=delete_tags takes them off every customer and deletes them; mode=move_tags&into=GROUP_ID moves them, with their assignments, into another group", "mode")
		return
	}
	g, err := s.Store.TagGroup(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if d.Mode == tag.DeleteTags && len(g.Tags) > 0 {
		ids := make([]int64, len(g.Tags))
		for i, t := range g.Tags {
			ids[i] = t.ID
		}
		if !s.refuseRuleTags(w, r, ids) {
			return
		}
	}
	changes, err := s.Store.DeleteTagGroup(r.Context(), id, d)
	if err != nil {
		s.writeTagError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiTagRemovals{Removed: len(changes)})
}

// --- tags ---

// apiTagCount is a tag with how many customers hold it.
type apiTagCount struct {
	tag.Tag
	Customers int64 `json:"customers"`
}

// apiTagGroupCounts is a group with its tags and their counts.
type apiTagGroupCounts struct {
	*tag.Group
	Tags []apiTagCount `json:"tags"`
}

func (s *Server) apiListTags(w http.ResponseWriter, r *http.Request) {
	groups, err := s.Store.ListTagGroups(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	counts, err := s.Store.TagCounts(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]apiTagGroupCounts, len(groups))
	for i, g := range groups {
		out[i] = apiTagGroupCounts{Group: g, Tags: make([]apiTagCount, len(g.Tags))}
		for k, t := range g.Tags {
			out[i].Tags[k] = apiTagCount{Tag: t, Customers: counts[t.ID]}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

// apiTagBody is the body of POST /api/v1/tags; PATCH takes name and color.
type apiTagBody struct {
	GroupID  *int64  `json:"group_id"`
	Name     *string `json:"name"`
	Color    *string `json:"color"`
	Position *int    `json:"position"`
}

func (s *Server) apiCreateTag(w http.ResponseWriter, r *http.Request) {
	var b apiTagBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	t := &tag.Tag{}
	switch {
	case b.GroupID == nil || *b.GroupID <= 0:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "required: the tag group", "group_id")
		return
	case b.Position != nil && *b.Position < 1:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "want 1 or more", "position")
		return
	}
	t.GroupID = *b.GroupID
	if b.Name != nil {
		t.Name = *b.Name
	}
	if b.Color != nil {
		t.Color = *b.Color
	}
	if b.Position != nil {
		t.Position = *b.Position
	}
	if err := s.Store.CreateTag(r.Context(), t); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tags/"+strconv.FormatInt(t.ID, 10))
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) apiUpdateTag(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var b apiTagBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if b.GroupID != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "a tag changes group when its group is deleted with mode=move_tags", "group_id")
		return
	}
	if b.Position != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "the order of tags is not changed here", "position")
		return
	}
	t, err := s.Store.Tag(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if b.Name != nil {
		t.Name = *b.Name
	}
	if b.Color != nil {
		t.Color = *b.Color
	}
	if err := s.Store.UpdateTag(r.Context(), t); err != nil {
		s.writeTagError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) apiDeleteTag(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := s.Store.Tag(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if !s.refuseRuleTags(w, r, []int64{id}) {
		return
	}
	changes, err := s.Store.DeleteTag(r.Context(), id, manualCause(r, ""))
	if err != nil {
		s.writeTagError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiTagRemovals{Removed: len(changes)})
}

// --- one customer ---

func (s *Server) apiCustomerTags(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	s.writeCustomerTags(w, r, c.ID, nil)
}

// apiCustomerTagsAnswer is a customer's tags, after a change with its counts.
type apiCustomerTagsAnswer struct {
	Added   *int             `json:"added,omitempty"`
	Removed *int             `json:"removed,omitempty"`
	Tags    []tag.Assignment `json:"tags"`
}

func (s *Server) writeCustomerTags(w http.ResponseWriter, r *http.Request, id int64, changes []tag.Change) {
	as, err := s.Store.CustomerTags(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := apiCustomerTagsAnswer{Tags: as}
	if changes != nil {
		a, rm := tag.Counts(changes)
		out.Added, out.Removed = &a, &rm
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiCustomerTagHistory(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "before" && name != "limit" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	var before int64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "before must be a history entry id", "before")
			return
		}
		before = n
	}
	limit, ok := queryInt(w, r, "limit", 100, 1, 1000)
	if !ok {
		return
	}
	hist, err := s.Store.TagHistory(r.Context(), c.ID, before, limit)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := map[string]any{"history": hist}
	if len(hist) == limit {
		out["next_before"] = hist[len(hist)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// apiCustomerTagsBody is the body of POST /api/v1/customers/{id}/tags.
type apiCustomerTagsBody struct {
	Tags []int64 `json:"tags"`
}

func (s *Server) apiAssignCustomerTags(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	var b apiCustomerTagsBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if err := s.checkTagList(r.Context(), b.Tags, true); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	changes, err := s.Store.AssignTags(r.Context(), []int64{c.ID}, b.Tags, manualCause(r, ""))
	if err != nil {
		s.writeTagError(w, r, err)
		return
	}
	s.writeCustomerTags(w, r, c.ID, nonNil(changes))
}

func (s *Server) apiRemoveCustomerTag(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	tagID, err := strconv.ParseInt(r.PathValue("tagId"), 10, 64)
	if err != nil || tagID <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "not found", "")
		return
	}
	if _, err := s.Store.Tag(r.Context(), tagID); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	changes, err := s.Store.RemoveTag(r.Context(), c.ID, tagID, manualCause(r, ""))
	if err != nil {
		s.writeTagError(w, r, err)
		return
	}
	s.writeCustomerTags(w, r, c.ID, nonNil(changes))
}

func nonNil(changes []tag.Change) []tag.Change {
	if changes == nil {
		return []tag.Change{}
	}
	return changes
}

// checkTagList validates the tags of a request: at least one, each an existing tag once,
// and (when adding) at most one of a single-choice group. Errors name "tags[i]".
func (s *Server) checkTagList(ctx context.Context, ids []int64, adding bool) error {
	if len(ids) == 0 {
		return &customer.FieldError{Field: "tags", Reason: "name at least one tag id"}
	}
	if len(ids) > tag.MaxRuleTags {
		return &customer.FieldError{Field: "tags", Reason: fmt.Sprintf("at most %d tags at once", tag.MaxRuleTags)}
	}
	groups, err := s.Store.ListTagGroups(ctx)
	if err != nil {
		return err
	}
	type meta struct {
		name  string
		group *tag.Group
	}
	tags := map[int64]meta{}
	for _, g := range groups {
		for _, t := range g.Tags {
			tags[t.ID] = meta{t.Name, g}
		}
	}
	seen := map[int64]bool{}
	byGroup := map[int64]int64{}
	for i, id := range ids {
		field := fmt.Sprintf("tags[%d]", i)
		m, ok := tags[id]
		switch {
		case !ok:
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("no tag %d", id)}
		case seen[id]:
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("tag %d is listed twice", id)}
		}
		seen[id] = true
		if prev, ok := byGroup[m.group.ID]; ok && adding && m.group.Exclusive {
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("%q and %q are both in the single-choice group %q: assign one", tags[prev].name, m.name, m.group.Name)}
		}
		byGroup[m.group.ID] = id
	}
	return nil
}

// --- bulk ---

// apiBulkTagsBody is the JSON body of POST /api/v1/tags/assign and /api/v1/tags/remove: tags
// and exactly one of customers, segment (a condition tree) or segment_id (a saved segment).
type apiBulkTagsBody struct {
	Tags      []int64         `json:"tags"`
	Customers []int64         `json:"customers"`
	Segment   json.RawMessage `json:"segment"`
	SegmentID int64           `json:"segment_id"`
}

// apiUnknown is a customer id a bulk change skipped, with its CSV line.
type apiUnknown struct {
	Line   int    `json:"line,omitempty"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// apiBulkTagsAnswer counts what a bulk change did.
type apiBulkTagsAnswer struct {
	Customers    int          `json:"customers"` // customers the change went to
	Added        int          `json:"added"`
	Removed      int          `json:"removed"`
	UnknownCount int          `json:"unknown_count"`
	Unknown      []apiUnknown `json:"unknown"` // the first 1,000
}

func (s *Server) apiBulkAssignTags(w http.ResponseWriter, r *http.Request) { s.bulkTags(w, r, true) }
func (s *Server) apiBulkRemoveTags(w http.ResponseWriter, r *http.Request) { s.bulkTags(w, r, false) }

// idLine is a customer id and where it came from (a CSV line; 0 for JSON).
type idLine struct {
	id    int64
	line  int
	value string
}

func (s *Server) bulkTags(w http.ResponseWriter, r *http.Request, adding bool) {
	ctx := r.Context()
	q := r.URL.Query()
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isCSV := ct == "text/csv"
	for name := range q {
		if name != "strict" && !(isCSV && name == "tags") {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	strict, ok := queryBool(w, r, "strict")
	if !ok {
		return
	}
	var (
		tags    []int64
		targets []idLine
		bad     []apiUnknown // lines that are not ids
		ref     string
		checked bool // targets are known customers (a segment's members)
	)
	if isCSV {
		var ok bool
		if tags, ok = queryIDs(w, r, "tags"); !ok {
			return
		}
		if err := s.checkTagList(ctx, tags, adding); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		var err error
		targets, bad, err = readCustomerCSV(http.MaxBytesReader(w, r.Body, bulkCSVLimit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a CSV of at most %d MB", bulkCSVLimit>>20), "")
				return
			}
			s.writeStoreError(w, r, err)
			return
		}
		ref = "csv"
	} else {
		var b apiBulkTagsBody
		if !decodeJSON(w, r, bulkJSONLimit, &b) {
			return
		}
		tags = b.Tags
		given := 0
		for _, set := range []bool{b.Customers != nil, len(b.Segment) > 0 && string(b.Segment) != "null", b.SegmentID != 0} {
			if set {
				given++
			}
		}
		if given != 1 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "give exactly one of customers (ids), segment (a condition tree) or segment_id", "customers")
			return
		}
		if err := s.checkTagList(ctx, tags, adding); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		switch {
		case b.Customers != nil:
			for _, id := range b.Customers {
				targets = append(targets, idLine{id: id, value: strconv.FormatInt(id, 10)})
			}
		default:
			ids, err := s.bulkSegmentMembers(ctx, b.Segment, b.SegmentID)
			if err != nil {
				s.writeStoreError(w, r, err)
				return
			}
			for _, id := range ids {
				targets = append(targets, idLine{id: id})
			}
			checked = true
			if b.SegmentID != 0 {
				ref = "segment:" + strconv.FormatInt(b.SegmentID, 10)
			} else {
				ref = "segment"
			}
		}
	}
	ids, unknown := targetIDs(targets), bad
	if !checked {
		var err error
		if ids, unknown, err = s.knownCustomers(ctx, targets, bad); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
	}
	if strict && len(unknown) > 0 {
		u := unknown[0]
		field := "customers"
		if u.Line > 0 {
			field = "line " + strconv.Itoa(u.Line)
		}
		writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("%s: %s (%d ids unknown or unreadable; strict writes nothing)", u.Value, u.Reason, len(unknown)), field)
		return
	}
	out := apiBulkTagsAnswer{Customers: len(ids), UnknownCount: len(unknown), Unknown: unknown[:min(len(unknown), maxReported)]}
	cause := manualCause(r, ref)
	for start := 0; start < len(ids); start += bulkTagChunk {
		part := ids[start:min(start+bulkTagChunk, len(ids))]
		var (
			changes []tag.Change
			err     error
		)
		if adding {
			changes, err = s.Store.AssignTags(ctx, part, tags, cause)
		} else {
			changes, err = s.Store.RemoveTags(ctx, part, tags, cause)
		}
		if err != nil {
			if start > 0 {
				s.Log.Error("bulk tag change stopped part way", "done_customers", start, "of", len(ids), "err", err)
			}
			s.writeTagError(w, r, err)
			return
		}
		a, rm := tag.Counts(changes)
		out.Added, out.Removed = out.Added+a, out.Removed+rm
	}
	writeJSON(w, http.StatusOK, out)
}

// queryIDs reads a list of positive ids from a query parameter, given as name=1,2 or
// repeated; it must be present.
func queryIDs(w http.ResponseWriter, r *http.Request, name string) ([]int64, bool) {
	var ids []int64
	for _, v := range r.URL.Query()[name] {
		for _, part := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil || id <= 0 {
				writeError(w, http.StatusBadRequest, "invalid_parameter", name+" must be tag ids, e.g. "+name+"=3,7", name)
				return nil, false
			}
			ids = append(ids, id)
		}
	}
	return ids, true
}

func targetIDs(ts []idLine) []int64 {
	ids := make([]int64, len(ts))
	for i, t := range ts {
		ids[i] = t.id
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// knownCustomers splits targets into the ids of live customers (sorted, once each) and the
// rest, reported after bad.
func (s *Server) knownCustomers(ctx context.Context, targets []idLine, bad []apiUnknown) ([]int64, []apiUnknown, error) {
	cs, err := s.Store.CustomersByID(ctx, targetIDs(targets))
	if err != nil {
		return nil, nil, err
	}
	merged := make(map[int64]int64, len(cs)) // live customers → 0
	for _, c := range cs {
		merged[c.ID] = c.MergedInto
	}
	unknown := bad
	var ids []int64
	for _, t := range targets {
		into, ok := merged[t.id]
		switch {
		case !ok:
			unknown = append(unknown, apiUnknown{Line: t.line, Value: t.value, Reason: "no such customer"})
		case into != 0:
			unknown = append(unknown, apiUnknown{Line: t.line, Value: t.value, Reason: fmt.Sprintf("merged into customer %d", into)})
		default:
			ids = append(ids, t.id)
		}
	}
	slices.SortFunc(unknown, func(a, b apiUnknown) int { return a.Line - b.Line })
	slices.Sort(ids)
	return slices.Compact(ids), unknown, nil
}

// readCustomerCSV reads customer ids from a CSV: one id per line, or a header row with a
// column named id or customer_id (any other columns are ignored). Blank lines are skipped;
// values that are not ids come back in bad with their line.
func readCustomerCSV(rd io.Reader) (ids []idLine, bad []apiUnknown, err error) {
	cr := csv.NewReader(rd)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	col, first := 0, true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, nil, &customer.FieldError{Field: "line " + strconv.Itoa(pe.Line), Reason: pe.Err.Error()}
			}
			return nil, nil, err
		}
		if first {
			first = false
			rec[0] = strings.TrimPrefix(rec[0], "\ufeff") // Excel's byte order mark
			header := -1
			for i, v := range rec {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "id", "customer_id":
					header = i
				}
			}
			if header >= 0 {
				col = header
				continue
			}
			if _, err := strconv.ParseInt(strings.TrimSpace(rec[0]), 10, 64); err != nil {
				return nil, nil, &customer.FieldError{Field: "line 1", Reason: "want one customer id per line, or a header with a column named id or customer_id"}
			}
		}
		line, _ := cr.FieldPos(0)
		if col >= len(rec) {
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			bad = append(bad, apiUnknown{Line: line, Reason: "no id column on this line"})
			continue
		}
		v := strings.TrimSpace(rec[col])
		if v == "" {
			if len(rec) > 1 {
				bad = append(bad, apiUnknown{Line: line, Reason: "empty id"})
			}
			continue
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			bad = append(bad, apiUnknown{Line: line, Value: v, Reason: "not a customer id"})
			continue
		}
		ids = append(ids, idLine{id: id, line: line, value: v})
	}
	return ids, bad, nil
}

// bulkSegmentMembers resolves a bulk change's segment (a tree, or a saved segment's id) to
// its members now. Errors name the field: segment.children[0].value, segment_id.
func (s *Server) bulkSegmentMembers(ctx context.Context, raw json.RawMessage, segmentID int64) ([]int64, error) {
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	var tree *segment.Node
	if segmentID != 0 {
		t, ok := sch.SegmentTree(segmentID)
		if !ok {
			return nil, &customer.FieldError{Field: "segment_id", Reason: fmt.Sprintf("no segment %d", segmentID)}
		}
		tree = t
	} else {
		t, err := segment.Parse(raw)
		if err == nil {
			err = segment.Validate(t, sch, 0)
		}
		if err != nil {
			var se *segment.Error
			if errors.As(err, &se) {
				field := "segment"
				if se.Path != "" {
					field += "." + se.Path
				}
				return nil, &customer.FieldError{Field: field, Reason: se.Msg}
			}
			return nil, &customer.FieldError{Field: "segment", Reason: err.Error()}
		}
		tree = t
	}
	return s.segmentMembers(ctx, tree, sch)
}

// segmentMembers returns the customers a validated tree selects now: from the audience
// engine when it is built, otherwise as SQL on the store.
func (s *Server) segmentMembers(ctx context.Context, tree *segment.Node, sch *store.SegmentSchema) ([]int64, error) {
	if s.Audience != nil && s.Audience.Ready() {
		b, err := s.Audience.Evaluate(ctx, tree, sch.SegmentTree)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, 0, b.GetCardinality())
		it := b.Iterator()
		for it.HasNext() {
			ids = append(ids, int64(it.Next()))
		}
		return ids, nil
	}
	return s.Store.SegmentMembersSQL(ctx, tree, sch, time.Now(), nil)
}

// ruleMembers resolves a tag rule's condition for the rule runner (tagrule.Members).
func (s *Server) ruleMembers(tree *segment.Node) ([]int64, error) {
	ctx := context.Background()
	sch, err := s.Store.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	return s.segmentMembers(ctx, tree, sch)
}
