package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/segmentsvc"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The 人群 pages: saved segments with live counts and count-history sparklines, and the
// segment builder. The builder is a small script (static/segment-builder.js) that edits the
// condition tree kept as JSON in the form's "tree" field and asks POST /api/v1/segments/count
// for the live count; without JavaScript the same field is an editable text area, and the
// "count" button answers with the count after a round trip. Saving, members, exports and
// explanations are segmentsvc's, as for the JSON API.

func (s *Server) routesSegmentsConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /segments", s.page(s.segmentsPage, segmentOperators...))
	handle("GET /segments/new", s.page(s.segmentPage, segmentOperators...))
	handle("POST /segments/new", s.page(s.saveSegmentForm, segmentOperators...))
	handle("GET /segments/{id}", s.page(s.segmentPage, segmentOperators...))
	handle("POST /segments/{id}", s.page(s.saveSegmentForm, segmentOperators...))
	handle("POST /segments/{id}/delete", s.page(s.deleteSegmentForm, segmentOperators...))
}

// segmentHistoryDays is how far back the sparklines go.
const segmentHistoryDays = 30

// segmentRow is a segment in the list.
type segmentRow struct {
	segmentsvc.Counted
	History []store.SegmentCount
	Spark   template.HTML
	Summary string
}

func (s *Server) segmentsPage(w http.ResponseWriter, r *http.Request) {
	svc := s.segments()
	list, source, err := svc.List(r.Context(), principalFrom(r).Scope())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "segments", "segments.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	names, err := s.segmentNames(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rows := make([]segmentRow, len(list))
	for i, c := range list {
		rows[i] = segmentRow{Counted: c, Summary: names.describe(v, c.Tree)}
		if rows[i].History, err = svc.History(r.Context(), c.ID, segmentHistoryDays); err != nil {
			s.serverError(w, r, err)
			return
		}
		rows[i].Spark = sparkline(v, rows[i].History, 120, 32)
	}
	v.Data = struct {
		Rows   []segmentRow
		Source segmentsvc.Source
	}{rows, source}
	s.render(w, r, http.StatusOK, "segments", v)
}

// segmentData is the builder page of a new or saved segment.
type segmentData struct {
	Segment     *store.SavedSegment // nil while new
	Name, Desc  string
	Tree        string // the tree as JSON, as the form carries it
	Summary     string
	Count       *segmentsvc.Count
	Builder     string // the builder's schema, JSON
	Error       string
	ErrorField  string
	Members     []*customer.Customer
	OwnerNames  map[int64]string
	NextURL     string
	FirstURL    string
	Paged       bool
	History     []store.SegmentCount
	Spark       template.HTML
	ExplainID   string
	Explain     *explainRow
	ExplainHeld bool
}

// explainRow is one node of an explanation as the page shows it.
type explainRow struct {
	Text     string
	Held     bool
	Group    bool
	Children []*explainRow
}

func (s *Server) segmentPage(w http.ResponseWriter, r *http.Request) {
	d := segmentData{}
	if r.PathValue("id") != "" {
		g, err := s.segments().Get(r.Context(), pathInt(r, "id"))
		if s.loadFailed(w, r, err) {
			return
		}
		b, _ := json.Marshal(g.Tree)
		d.Segment, d.Name, d.Desc, d.Tree = g, g.Name, g.Description, string(b)
	} else if id, err := strconv.ParseInt(r.URL.Query().Get("tag"), 10, 64); err == nil && id > 0 {
		d.Tree = fmt.Sprintf(`{"op":"and","children":[{"tag":{"match":"any","ids":[%d]}}]}`, id)
	}
	s.renderSegment(w, r, http.StatusOK, d)
}

// renderSegment fills in what the page shows beside the form: the count, members, history,
// the explanation asked for.
func (s *Server) renderSegment(w http.ResponseWriter, r *http.Request, status int, d segmentData) {
	ctx := r.Context()
	svc := s.segments()
	owner := principalFrom(r).Scope()
	titleKey, args := "segment.new", []any{}
	if d.Segment != nil {
		titleKey, args = "segment.title", []any{d.Segment.Name}
	}
	v := s.newView(w, r, "segments", titleKey, args...)
	v.Crumbs = []crumb{{Label: v.T("segments.title"), URL: "/segments"}, {Label: v.Title}}
	names, err := s.segmentNames(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var self int64
	if d.Segment != nil {
		self = d.Segment.ID
	}
	if d.Builder, err = s.builderSchema(r, v, self); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Tree != "" && d.Error == "" {
		if n, err := segment.Parse([]byte(d.Tree)); err == nil {
			d.Summary = names.describe(v, n)
			if d.Count == nil {
				c, err := svc.Count(ctx, n, owner)
				var se *segment.Error
				switch {
				case errors.As(err, &se):
					d.Error, d.ErrorField = v.T("segment.error_tree", se.Error()), "tree."+se.Path
				case err != nil:
					s.serverError(w, r, err)
					return
				default:
					d.Count = &c
				}
			}
		}
	}
	if d.Segment != nil && status == http.StatusOK {
		if !s.segmentMemberPage(w, r, v, &d) {
			return
		}
		if d.History, err = svc.History(ctx, d.Segment.ID, segmentHistoryDays); err != nil {
			s.serverError(w, r, err)
			return
		}
		d.Spark = sparkline(v, d.History, 320, 64)
		if d.ExplainID = strings.TrimSpace(r.URL.Query().Get("explain")); d.ExplainID != "" {
			cid, _ := strconv.ParseInt(d.ExplainID, 10, 64)
			ex, err := svc.Explain(ctx, d.Segment.Tree, cid, owner)
			switch {
			case errors.Is(err, store.ErrNotFound) || cid <= 0:
				d.Error = v.T("segment.explain_unknown", d.ExplainID)
			case err != nil:
				var se *segment.Error
				if !errors.As(err, &se) {
					s.serverError(w, r, err)
					return
				}
				d.Error = v.T("segment.error_tree", se.Error())
			default:
				d.Explain, d.ExplainHeld = names.explain(v, ex.Explanation), ex.Held
				explainGroupOps(v, d.Explain, d.Segment.Tree)
			}
		}
	}
	v.Data = d
	s.render(w, r, status, "segment", v)
}

// segmentMemberLimit is the page size of a segment's member list.
const segmentMemberLimit = 50

func (s *Server) segmentMemberPage(w http.ResponseWriter, r *http.Request, v *view, d *segmentData) bool {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	p, err := s.segments().Members(r.Context(), d.Segment.ID, principalFrom(r).Scope(), max(after, 0), segmentMemberLimit)
	var se *segment.Error
	if errors.As(err, &se) {
		d.Error = v.T("segment.error_tree", se.Error())
		return true
	}
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	d.Members, d.Paged = p.Customers, after > 0
	base := "/segments/" + strconv.FormatInt(d.Segment.ID, 10)
	d.FirstURL = base + "#members"
	if p.Next != 0 {
		d.NextURL = base + "?after=" + strconv.FormatInt(p.Next, 10) + "#members"
	}
	all, err := s.Store.ListStaff(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	d.OwnerNames = map[int64]string{}
	for _, m := range all {
		d.OwnerNames[m.ID] = m.Name
	}
	return true
}

// saveSegmentForm saves the builder's segment, or with action=count only counts it (the
// builder without JavaScript).
func (s *Server) saveSegmentForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	svc := s.segments()
	d := segmentData{Name: r.PostFormValue("name"), Desc: r.PostFormValue("description"), Tree: strings.TrimSpace(r.PostFormValue("tree"))}
	if r.PathValue("id") != "" {
		g, err := svc.Get(ctx, pathInt(r, "id"))
		if s.loadFailed(w, r, err) {
			return
		}
		d.Segment = g
	}
	v := &view{Lang: requestLang(r)}
	fail := func(field, msg string) {
		d.Error, d.ErrorField = msg, field
		s.renderSegment(w, r, http.StatusUnprocessableEntity, d)
	}
	if d.Tree == "" {
		fail("tree", v.T("segment.error_empty"))
		return
	}
	tree, err := segment.Parse([]byte(d.Tree))
	if err != nil {
		var se *segment.Error
		errors.As(err, &se)
		fail("tree", v.T("segment.error_tree", err.Error()))
		return
	}
	if r.PostFormValue("action") == "count" {
		c, err := svc.Count(ctx, tree, principalFrom(r).Scope())
		var se *segment.Error
		if errors.As(err, &se) {
			fail("tree."+se.Path, v.T("segment.error_tree", se.Error()))
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d.Count = &c
		s.renderSegment(w, r, http.StatusOK, d)
		return
	}
	var g *store.SavedSegment
	if d.Segment == nil {
		g, err = svc.Create(ctx, d.Name, d.Desc, tree, principalFrom(r).StaffID())
	} else {
		g, err = svc.Update(ctx, d.Segment.ID, segmentsvc.Patch{Name: &d.Name, Description: &d.Desc, Tree: tree})
	}
	if err != nil {
		var (
			se    *segment.Error
			fe    *customer.FieldError
			taken *segmentsvc.NameTakenError
		)
		switch {
		case errors.As(err, &se):
			fail("tree."+se.Path, v.T("segment.error_tree", se.Error()))
		case errors.As(err, &taken):
			fail("name", v.T("segment.error_name_taken", taken.Name))
		case errors.As(err, &fe):
			fail(fe.Field, v.T("segment.error_field", fe.Field, fe.Reason))
		default:
			s.serverError(w, r, err)
		}
		return
	}
	s.Log.Info("segment saved", "segment", g.ID, "by", principalFrom(r).StaffID())
	setFlash(w, "success", "flash.segment_saved", g.Name)
	http.Redirect(w, r, "/segments/"+strconv.FormatInt(g.ID, 10), http.StatusSeeOther)
}

// deleteSegmentForm deletes a segment once confirmed; one that others refer to stays, and
// the page says which.
func (s *Server) deleteSegmentForm(w http.ResponseWriter, r *http.Request) {
	svc := s.segments()
	g, err := svc.Get(r.Context(), pathInt(r, "id"))
	if s.loadFailed(w, r, err) {
		return
	}
	back := "/segments/" + strconv.FormatInt(g.ID, 10)
	if r.PostFormValue("confirm") != "yes" {
		v := s.newView(w, r, "segments", "segment.delete_title", g.Name)
		v.Crumbs = []crumb{{Label: v.T("segments.title"), URL: "/segments"}, {Label: g.Name, URL: back}, {Label: v.T("segment.delete")}}
		v.Data = g
		s.render(w, r, http.StatusOK, "segment_delete", v)
		return
	}
	var inUse *store.SegmentInUseError
	err = svc.Delete(r.Context(), g.ID)
	switch {
	case errors.As(err, &inUse):
		names := make([]string, len(inUse.Referrers))
		for i, ref := range inUse.Referrers {
			names[i] = ref.Name
		}
		setFlash(w, "error", "flash.segment_in_use", g.Name, strings.Join(names, "、"))
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "flash.segment_deleted", g.Name)
	http.Redirect(w, r, "/segments", http.StatusSeeOther)
}

// --- the builder's schema ---

// builderOption is a choice in a builder menu.
type builderOption struct {
	V     string `json:"v"`
	L     string `json:"l"`
	Type  string `json:"type,omitempty"`
	Group string `json:"group,omitempty"`
}

// builderSchemaJSON is what the builder script needs to know: fields and their types,
// operators per type, tags, groups, segments, staff, and its words in the viewer's language.
type builderSchemaJSON struct {
	Fields   []builderOption            `json:"fields"`
	Ops      map[string][]builderOption `json:"ops"`
	PropOps  []builderOption            `json:"propOps"`
	Tags     []builderOption            `json:"tags"`
	Groups   []builderOption            `json:"groups"`
	Segments []builderOption            `json:"segments"`
	Staff    []builderOption            `json:"staff"`
	Events   []string                   `json:"events"`
	Metrics  []builderOption            `json:"metrics"`
	Habits   []builderOption            `json:"habits"`
	Labels   map[string]string          `json:"labels"`
}

// builderLabels are the builder script's words (keys under "builder.").
var builderLabels = []string{
	"all", "any", "none", "add_condition", "add_group", "remove", "kind.field", "kind.tag",
	"kind.event", "kind.order", "kind.habit", "kind.segment", "match.any", "match.all",
	"match.none", "tags_of_group", "pick_tags", "event_name", "count", "times", "window",
	"last_days", "all_time", "timing.count", "timing.first", "timing.last", "where",
	"add_where", "prop", "value", "values_hint", "days", "counting", "count_label",
	"incomplete", "empty", "error", "habit_in", "and", "or", "not_label", "from", "to",
}

// cmpKeys are every comparison a builder menu can offer (their labels are "cmp.KEY").
func cmpKeys() []string {
	seen := map[string]bool{}
	var out []string
	add := func(list []string) {
		for _, c := range list {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	types := make([]string, 0, len(segment.Operators))
	for t := range segment.Operators {
		types = append(types, string(t))
	}
	sort.Strings(types)
	for _, t := range types {
		add(segment.Operators[segment.Type(t)])
	}
	add(segment.PropOperators)
	return out
}

// builderSchema is the builder's schema for a page; self is the segment being edited (not
// offered as a reference to itself).
func (s *Server) builderSchema(r *http.Request, v *view, self int64) (string, error) {
	ctx := r.Context()
	b := builderSchemaJSON{Ops: map[string][]builderOption{}, Labels: map[string]string{}}
	for _, k := range builderLabels {
		b.Labels[k] = v.T("builder." + k)
	}
	fields := make([]string, 0, len(segment.ProfileFields))
	for k := range segment.ProfileFields {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		b.Fields = append(b.Fields, builderOption{V: k, L: v.T("seg.field." + k), Type: string(segment.ProfileFields[k])})
	}
	defs, err := s.Store.AttrDefs(ctx)
	if err != nil {
		return "", err
	}
	for _, d := range defs {
		label := d.Label
		if label == "" {
			label = d.Key
		}
		b.Fields = append(b.Fields, builderOption{V: segment.AttrPrefix + d.Key, L: label, Type: string(segment.AttrTypeToType(d.Type)), Group: v.T("builder.attributes")})
	}
	models := make([]string, 0, len(segment.ModelFields))
	for k := range segment.ModelFields {
		models = append(models, k)
	}
	sort.Strings(models)
	for _, k := range models { // RFM, stages, tier, points: docs/model-outputs.md
		b.Fields = append(b.Fields, builderOption{V: k, L: v.T("seg.field." + k), Type: string(segment.ModelFields[k]), Group: v.T("builder.models")})
	}
	for t, ops := range segment.Operators {
		for _, op := range ops {
			b.Ops[string(t)] = append(b.Ops[string(t)], builderOption{V: op, L: v.T("cmp." + op)})
		}
	}
	for _, op := range segment.PropOperators {
		b.PropOps = append(b.PropOps, builderOption{V: op, L: v.T("cmp." + op)})
	}
	groups, err := s.Store.ListTagGroups(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		b.Groups = append(b.Groups, builderOption{V: strconv.FormatInt(g.ID, 10), L: g.Name})
		for _, t := range g.Tags {
			b.Tags = append(b.Tags, builderOption{V: strconv.FormatInt(t.ID, 10), L: t.Name, Group: g.Name})
		}
	}
	segs, err := s.Store.ListSegments(ctx)
	if err != nil {
		return "", err
	}
	events := map[string]bool{}
	for _, g := range segs {
		if g.ID != self {
			b.Segments = append(b.Segments, builderOption{V: strconv.FormatInt(g.ID, 10), L: g.Name})
		}
		segment.Walk(g.Tree, func(n *segment.Node) {
			if n.Event != nil {
				events[n.Event.Name] = true
			}
		})
	}
	rules, err := s.Store.TagRules(ctx)
	if err != nil {
		return "", err
	}
	for _, rule := range rules {
		if rule.Trigger.Event != nil {
			events[rule.Trigger.Event.Name] = true
		}
	}
	for _, name := range commonEvents {
		events[name] = true
	}
	for name := range events {
		b.Events = append(b.Events, name)
	}
	sort.Strings(b.Events)
	all, err := s.Store.ListStaff(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range all {
		if !m.Disabled {
			b.Staff = append(b.Staff, builderOption{V: strconv.FormatInt(m.ID, 10), L: m.Name})
		}
	}
	for _, m := range []string{"count", "total", "avg", "first_at", "last_at"} {
		b.Metrics = append(b.Metrics, builderOption{V: m, L: v.T("seg.order." + m), Type: string(segment.OrderMetrics[m])})
	}
	for _, h := range []string{"active_hour", "active_weekday", "buy_hour", "buy_weekday"} {
		rng := segment.HabitKinds[h]
		b.Habits = append(b.Habits, builderOption{V: h, L: v.T("seg.habit." + h), Type: fmt.Sprintf("%d-%d", rng[0], rng[1])})
	}
	out, err := json.Marshal(b)
	return string(out), err
}

// commonEvents are offered in the builder's event menu beside those segments and rules name
// (the events table has no index that would list names cheaply).
var commonEvents = []string{"Order Completed", "Order Refunded", "加企微", "入群", "咨询", "打卡", "提交问卷", "领取优惠券", "观看直播", "分享"}

// --- describing trees ---

// segmentNameIndex names what a tree refers to by id: tags, tag groups, segments, staff.
type segmentNameIndex struct {
	tags, groups, segments, staff map[int64]string
	attrs                         map[string]string
}

func (s *Server) segmentNames(r *http.Request) (*segmentNameIndex, error) {
	ctx := r.Context()
	ix := &segmentNameIndex{tags: map[int64]string{}, groups: map[int64]string{}, segments: map[int64]string{}, staff: map[int64]string{}, attrs: map[string]string{}}
	groups, err := s.Store.ListTagGroups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		ix.groups[g.ID] = g.Name
		for _, t := range g.Tags {
			ix.tags[t.ID] = t.Name
		}
	}
	segs, err := s.Store.ListSegments(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range segs {
		ix.segments[g.ID] = g.Name
	}
	all, err := s.Store.ListStaff(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		ix.staff[m.ID] = m.Name
	}
	defs, err := s.Store.AttrDefs(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		if d.Label != "" {
			ix.attrs[d.Key] = d.Label
		}
	}
	return ix, nil
}

// describe writes a tree in words, e.g. "地区 等于 上海 且 持有任一标签 VIP".
func (ix *segmentNameIndex) describe(v *view, n *segment.Node) string {
	if n == nil {
		return ""
	}
	if n.Op != "" {
		parts := make([]string, len(n.Children))
		for i, c := range n.Children {
			parts[i] = ix.describe(v, c)
			if c.Op != "" && len(c.Children) > 1 {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		switch n.Op {
		case "not":
			return v.T("builder.not_label") + " " + strings.Join(parts, "")
		case "or":
			return strings.Join(parts, v.T("describe.or"))
		}
		return strings.Join(parts, v.T("describe.and"))
	}
	return ix.leaf(v, n)
}

func (ix *segmentNameIndex) leaf(v *view, n *segment.Node) string {
	switch {
	case n.Field != "":
		label := v.T("seg.field." + n.Field)
		if key, ok := strings.CutPrefix(n.Field, segment.AttrPrefix); ok {
			label = key
			if l := ix.attrs[key]; l != "" {
				label = l
			}
		}
		return strings.TrimSpace(label + " " + ix.cmp(v, n.Cmp, n.Value, n.Field == "owner"))
	case n.Tag != nil:
		what := ""
		if n.Tag.Group != 0 {
			what = v.T("describe.group", ix.name(ix.groups, n.Tag.Group))
		} else {
			names := make([]string, len(n.Tag.IDs))
			for i, id := range n.Tag.IDs {
				names[i] = ix.name(ix.tags, id)
			}
			what = strings.Join(names, "、")
		}
		return v.T("describe.tag."+n.Tag.Match, what)
	case n.Event != nil:
		e := n.Event
		out := v.T("describe.event", e.Name)
		if e.Window != nil {
			out += " " + ix.window(v, e.Window)
		}
		for _, p := range e.Where {
			out += " · " + p.Prop + " " + ix.cmp(v, p.Cmp, p.Value, false)
		}
		switch {
		case e.Timing != "":
			out += " · " + v.T("builder.timing."+e.Timing) + " " + ix.cmp(v, e.Cmp, e.Value, false)
		case e.Count != nil:
			out += " · " + v.T("builder.count") + " " + ix.cmp(v, e.Count.Cmp, e.Count.Value, false)
		default:
			out += " · " + v.T("describe.at_least_once")
		}
		return out
	case n.Order != nil:
		out := v.T("seg.order." + n.Order.Metric)
		if n.Order.Window != nil {
			out += " " + ix.window(v, n.Order.Window)
		}
		return out + " " + ix.cmp(v, n.Order.Cmp, n.Order.Value, false)
	case n.Habit != nil:
		vals := make([]string, len(n.Habit.In))
		for i, x := range n.Habit.In {
			vals[i] = strconv.Itoa(x)
		}
		return v.T("seg.habit."+n.Habit.Kind) + " " + v.T("builder.habit_in") + " " + strings.Join(vals, "、")
	case n.Segment != 0:
		return v.T("describe.segment", ix.name(ix.segments, n.Segment))
	}
	return "?"
}

func (ix *segmentNameIndex) name(m map[int64]string, id int64) string {
	if s, ok := m[id]; ok {
		return s
	}
	return "#" + strconv.FormatInt(id, 10)
}

func (ix *segmentNameIndex) window(v *view, w *segment.Window) string {
	if w.LastDays > 0 {
		return v.T("describe.last_days", w.LastDays)
	}
	return v.T("describe.between", w.From, w.To)
}

func (ix *segmentNameIndex) cmp(v *view, cmp string, value any, staffRef bool) string {
	if cmp == "" {
		return ""
	}
	text := func(x any) string {
		if f, ok := x.(float64); ok {
			if staffRef {
				return ix.name(ix.staff, int64(f))
			}
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		if b, ok := x.(bool); ok {
			if b {
				return v.T("common.yes")
			}
			return v.T("common.no")
		}
		return fmt.Sprint(x)
	}
	out := v.T("cmp." + cmp)
	switch x := value.(type) {
	case nil:
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = text(e)
		}
		sep := "、"
		if cmp == "between" {
			sep = " ~ "
		}
		out += " " + strings.Join(parts, sep)
	default:
		out += " " + text(x)
	}
	return out
}

// explain turns an explanation into rows with words.
func (ix *segmentNameIndex) explain(v *view, ex *audience.Explanation) *explainRow {
	if ex == nil {
		return nil
	}
	row := &explainRow{Held: ex.Held, Group: len(ex.Children) > 0}
	if ex.Node != nil {
		row.Text = ix.leaf(v, ex.Node)
	}
	if row.Group || ex.Kind == "group" {
		row.Group = true
		row.Text = v.T("explain.group")
	}
	for _, c := range ex.Children {
		row.Children = append(row.Children, ix.explain(v, c))
	}
	return row
}

// explainGroupOps fills in each group's operator in an explanation from the tree it explains.
func explainGroupOps(v *view, row *explainRow, n *segment.Node) {
	if row == nil || n == nil || n.Op == "" {
		return
	}
	row.Text = v.T("explain.op." + n.Op)
	for i, c := range row.Children {
		if i < len(n.Children) {
			explainGroupOps(v, c, n.Children[i])
		}
	}
}

// --- the sparkline ---

// sparkline draws daily counts as a small SVG line with a dot per day whose <title> says the
// day and the count (numbers on hover, readable without colour).
func sparkline(v *view, hist []store.SegmentCount, width, height int) template.HTML {
	if len(hist) == 0 {
		return template.HTML(`<span class="muted small">` + template.HTMLEscapeString(v.T("segments.no_history")) + `</span>`)
	}
	lo, hi := hist[0].Count, hist[0].Count
	for _, h := range hist {
		lo, hi = min(lo, h.Count), max(hi, h.Count)
	}
	pad := 3.0
	x := func(i int) float64 {
		if len(hist) == 1 {
			return float64(width) / 2
		}
		return pad + float64(i)*(float64(width)-2*pad)/float64(len(hist)-1)
	}
	y := func(c int64) float64 {
		if hi == lo {
			return float64(height) / 2
		}
		return pad + (1-float64(c-lo)/float64(hi-lo))*(float64(height)-2*pad)
	}
	var b strings.Builder
	last := hist[len(hist)-1]
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, width, height, width, height,
		template.HTMLEscapeString(v.T("segments.spark_label", len(hist), formatInt(last.Count))))
	var pts []string
	for i, h := range hist {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(h.Count)))
	}
	fmt.Fprintf(&b, `<polyline points="%s"/>`, strings.Join(pts, " "))
	for i, h := range hist {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%s"><title>%s</title></circle>`, x(i), y(h.Count), map[bool]string{true: "2.6", false: "1.6"}[i == len(hist)-1],
			template.HTMLEscapeString(h.Day+": "+formatInt(h.Count)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
