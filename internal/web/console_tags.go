package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
	"github.com/siyu-scrm/siyu/internal/tagrule"
)

// The 标签 pages: tag groups and their tags with counts, tag rules with an editor and
// back-fill, and the tag forms of the customer profile. Editing is for the roles the JSON API
// lets edit tags (tagEditors); a sales person gets the 403 page, but may still tag their own
// customers on the profile, as the API allows.

func (s *Server) routesTagsConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /tags", s.page(s.tagsPage, tagEditors...))
	handle("POST /tags", s.page(s.createTagForm, tagEditors...))
	handle("POST /tags/tag/{id}", s.page(s.updateTagForm, tagEditors...))
	handle("POST /tags/tag/{id}/delete", s.page(s.deleteTagForm, tagEditors...))
	handle("POST /tags/groups", s.page(s.createTagGroupForm, tagEditors...))
	handle("POST /tags/groups/{id}", s.page(s.updateTagGroupForm, tagEditors...))
	handle("GET /tags/groups/{id}/delete", s.page(s.deleteTagGroupForm, tagEditors...))
	handle("POST /tags/groups/{id}/delete", s.page(s.deleteTagGroupForm, tagEditors...))
	handle("GET /tags/rules", s.page(s.tagRulesPage, tagEditors...))
	handle("GET /tags/rules/new", s.page(s.tagRulePage, tagEditors...))
	handle("POST /tags/rules/new", s.page(s.saveTagRuleForm, tagEditors...))
	handle("GET /tags/rules/{id}", s.page(s.tagRulePage, tagEditors...))
	handle("POST /tags/rules/{id}", s.page(s.saveTagRuleForm, tagEditors...))
	handle("POST /tags/rules/{id}/delete", s.page(s.deleteTagRuleForm, tagEditors...))
	handle("POST /tags/rules/{id}/backfill", s.page(s.backfillTagRuleForm, tagEditors...))
	handle("POST /customers/{id}/tags", s.page(s.customerTagForm))
	handle("POST /customers/{id}/tags/{tagId}/remove", s.page(s.customerUntagForm))
}

// tagsView starts a page of the 标签 section; tab is "groups" or "rules".
func (s *Server) tagsView(w http.ResponseWriter, r *http.Request, titleKey string, args ...any) *view {
	v := s.newView(w, r, "tags", titleKey, args...)
	v.Crumbs = []crumb{{Label: v.T("nav.tags"), URL: "/tags"}}
	if titleKey != "tags.title" {
		v.Crumbs = append(v.Crumbs, crumb{Label: v.Title})
	} else {
		v.Crumbs[0].URL = ""
	}
	return v
}

// tagCount is a tag with how many customers hold it.
type tagCount struct {
	tag.Tag
	Customers int64
	Pct       int // of the most held tag, for the bar
}

// tagGroupView is a group as the tags page shows it.
type tagGroupView struct {
	*tag.Group
	Tags     []tagCount
	Assigned int64 // assignments of the group's tags
}

// tagsData is the tags page.
type tagsData struct {
	Groups    []tagGroupView
	Kinds     []tag.Kind
	TagCount  int
	MaxCount  int64 // the largest tag count, for the bars
	NewGroup  tagGroupForm
	EditGroup int64 // the group whose edit form is open (after an error)
	Error     string
}

type tagGroupForm struct {
	Name, Kind string
	Exclusive  bool
}

// tagGroups lists every group with its tags and their counts.
func (s *Server) tagGroups(r *http.Request) ([]tagGroupView, error) {
	groups, err := s.Store.ListTagGroups(r.Context())
	if err != nil {
		return nil, err
	}
	counts, err := s.Store.TagCounts(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]tagGroupView, len(groups))
	for i, g := range groups {
		out[i] = tagGroupView{Group: g}
		for _, t := range g.Tags {
			out[i].Tags = append(out[i].Tags, tagCount{Tag: t, Customers: counts[t.ID]})
			out[i].Assigned += counts[t.ID]
		}
	}
	return out, nil
}

func (s *Server) renderTags(w http.ResponseWriter, r *http.Request, status int, d tagsData) {
	v := s.tagsView(w, r, "tags.title")
	groups, err := s.tagGroups(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Groups, d.Kinds = groups, tag.Kinds
	for _, g := range groups {
		d.TagCount += len(g.Tags)
		for _, t := range g.Tags {
			d.MaxCount = max(d.MaxCount, t.Customers)
		}
	}
	for _, g := range groups {
		for i := range g.Tags {
			if d.MaxCount > 0 {
				g.Tags[i].Pct = int(g.Tags[i].Customers * 100 / d.MaxCount)
			}
		}
	}
	if d.NewGroup.Kind == "" {
		d.NewGroup.Kind = string(tag.Custom)
	}
	v.Data = d
	s.render(w, r, status, "tags", v)
}

func (s *Server) tagsPage(w http.ResponseWriter, r *http.Request) {
	s.renderTags(w, r, http.StatusOK, tagsData{})
}

// tagFormError turns a store error of a tag form into a message in the viewer's language, or
// returns "" when the error is not the user's (a server error).
func tagFormError(v *view, err error) string {
	var (
		fe *customer.FieldError
		ex *tag.ExclusiveConflictError
	)
	switch {
	case errors.As(err, &ex):
		return v.T("tags.error.exclusive", ex.Customers, ex.Group)
	case errors.As(err, &fe):
		field := fe.Field
		if i := strings.IndexAny(field, ".["); i > 0 {
			field = field[:i]
		}
		switch field {
		case "name", "color", "kind", "into":
			return v.T("tags.error."+field) + " (" + fe.Reason + ")"
		}
		return v.T("tags.error.invalid", fe.Field, fe.Reason)
	case errors.Is(err, store.ErrConflict):
		return v.T("tags.error.conflict", strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		return v.T("tags.error.not_found")
	}
	return ""
}

// tagFail answers a failed tag form: the tags page with the message, or the 500 page.
func (s *Server) tagFail(w http.ResponseWriter, r *http.Request, err error, d tagsData) {
	v := &view{Lang: requestLang(r)}
	msg := tagFormError(v, err)
	if msg == "" {
		s.serverError(w, r, err)
		return
	}
	d.Error = msg
	s.renderTags(w, r, http.StatusUnprocessableEntity, d)
}

// tagGroupURL is a group's place on the tags page.
func tagGroupURL(id int64) string { return "/tags#group-" + strconv.FormatInt(id, 10) }

// tagRuleURL is a rule's editor page.
func tagRuleURL(id int64) string { return "/tags/rules/" + strconv.FormatInt(id, 10) }

func formID(r *http.Request, name string) int64 {
	id, _ := strconv.ParseInt(strings.TrimSpace(r.PostFormValue(name)), 10, 64)
	return id
}

func pathInt(r *http.Request, name string) int64 {
	id, _ := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id
}

func (s *Server) createTagGroupForm(w http.ResponseWriter, r *http.Request) {
	f := tagGroupForm{Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"), Exclusive: r.PostFormValue("exclusive") == "on"}
	g := &tag.Group{Name: f.Name, Kind: tag.Kind(f.Kind), Exclusive: f.Exclusive}
	if err := s.Store.CreateTagGroup(r.Context(), g); err != nil {
		s.tagFail(w, r, err, tagsData{NewGroup: f})
		return
	}
	setFlash(w, "success", "flash.tag_group_created", g.Name)
	http.Redirect(w, r, tagGroupURL(g.ID), http.StatusSeeOther)
}

func (s *Server) updateTagGroupForm(w http.ResponseWriter, r *http.Request) {
	id := pathInt(r, "id")
	g, err := s.Store.TagGroup(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	g.Name, g.Kind, g.Exclusive = r.PostFormValue("name"), tag.Kind(r.PostFormValue("kind")), r.PostFormValue("exclusive") == "on"
	if err := s.Store.UpdateTagGroup(r.Context(), g); err != nil {
		s.tagFail(w, r, err, tagsData{EditGroup: id})
		return
	}
	setFlash(w, "success", "flash.tag_group_saved", g.Name)
	http.Redirect(w, r, tagGroupURL(g.ID), http.StatusSeeOther)
}

// tagConfirmData is the page that asks before a tag or a group is deleted.
type tagConfirmData struct {
	Group     *tagGroupView // deleting a group
	Tag       *tagCount     // deleting a tag
	Others    []tagGroupView
	Mode      string
	Into      int64
	RuleUses  []string // rules that use the tags, which block deleting them
	RuleNames string   // RuleUses joined
	Error     string
}

// deleteTagGroupForm asks what becomes of a group's tags (delete them, or move them into
// another group) and deletes the group once the form says confirm=yes. The question is a
// page of its own, so it works without JavaScript.
func (s *Server) deleteTagGroupForm(w http.ResponseWriter, r *http.Request) {
	id := pathInt(r, "id")
	groups, err := s.tagGroups(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := tagConfirmData{Mode: r.FormValue("mode"), Into: formID(r, "into")}
	for i := range groups {
		if groups[i].ID == id {
			d.Group = &groups[i]
		} else {
			d.Others = append(d.Others, groups[i])
		}
	}
	if d.Group == nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if d.Mode == "" {
		d.Mode = tag.DeleteTags
		if len(d.Group.Tags) > 0 && len(d.Others) > 0 {
			d.Mode = tag.MoveTags
		}
	}
	ids := make([]int64, len(d.Group.Tags))
	for i, t := range d.Group.Tags {
		ids[i] = t.ID
	}
	if d.RuleUses, err = s.rulesUsing(r, ids); err != nil {
		s.serverError(w, r, err)
		return
	}
	d.RuleNames = strings.Join(d.RuleUses, "、")
	v := s.tagsView(w, r, "tags.delete_group.title", d.Group.Name)
	if r.Method == http.MethodPost && r.PostFormValue("confirm") == "yes" {
		del := tag.GroupDeletion{Mode: d.Mode, Cause: tag.Cause{By: principalFrom(r).StaffID(), Reason: tag.ReasonManual}}
		switch {
		case d.Mode == tag.MoveTags && d.Into <= 0:
			d.Error = v.T("tags.error.into")
		case d.Mode == tag.MoveTags:
			del.Into = d.Into
		case d.Mode == tag.DeleteTags && len(d.RuleUses) > 0:
			d.Error = v.T("tags.error.rule_uses", d.RuleNames)
		case d.Mode != tag.DeleteTags:
			d.Error = v.T("tags.error.mode")
		}
		if d.Error == "" {
			changes, err := s.Store.DeleteTagGroup(r.Context(), id, del)
			if err == nil {
				s.Log.Info("tag group deleted", "group", id, "mode", d.Mode, "by", principalFrom(r).StaffID())
				setFlash(w, "success", "flash.tag_group_deleted", d.Group.Name, strconv.Itoa(len(changes)))
				http.Redirect(w, r, "/tags", http.StatusSeeOther)
				return
			}
			if d.Error = tagFormError(v, err); d.Error == "" {
				s.serverError(w, r, err)
				return
			}
		}
	}
	v.Data = d
	status := http.StatusOK
	if d.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "tags_confirm", v)
}

// rulesUsing names the tag rules that add or remove any of ids.
func (s *Server) rulesUsing(r *http.Request, ids []int64) ([]string, error) {
	rules, err := s.Store.TagRules(r.Context())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rule := range rules {
		for _, id := range rule.Actions.TagIDs() {
			if containsID(ids, id) {
				out = append(out, rule.Name)
				break
			}
		}
	}
	return out, nil
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (s *Server) createTagForm(w http.ResponseWriter, r *http.Request) {
	t := &tag.Tag{GroupID: formID(r, "group"), Name: r.PostFormValue("name"), Color: r.PostFormValue("color")}
	if t.Color == "#000000" { // an untouched colour input: the console's default colour
		t.Color = ""
	}
	if err := s.Store.CreateTag(r.Context(), t); err != nil {
		s.tagFail(w, r, err, tagsData{EditGroup: t.GroupID})
		return
	}
	setFlash(w, "success", "flash.tag_created", t.Name)
	http.Redirect(w, r, tagGroupURL(t.GroupID), http.StatusSeeOther)
}

func (s *Server) updateTagForm(w http.ResponseWriter, r *http.Request) {
	t, err := s.Store.Tag(r.Context(), pathInt(r, "id"))
	if s.loadFailed(w, r, err) {
		return
	}
	t.Name = r.PostFormValue("name")
	if c := r.PostFormValue("color"); c != "" {
		t.Color = c
	}
	if err := s.Store.UpdateTag(r.Context(), t); err != nil {
		s.tagFail(w, r, err, tagsData{EditGroup: t.GroupID})
		return
	}
	setFlash(w, "success", "flash.tag_saved", t.Name)
	http.Redirect(w, r, tagGroupURL(t.GroupID), http.StatusSeeOther)
}

// deleteTagForm deletes a tag once confirmed (a JavaScript dialog, or the page this answers
// with). A tag a rule uses is not deleted: the page names the rules.
func (s *Server) deleteTagForm(w http.ResponseWriter, r *http.Request) {
	id := pathInt(r, "id")
	groups, err := s.tagGroups(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := tagConfirmData{}
	for _, g := range groups {
		for _, t := range g.Tags {
			if t.ID == id {
				d.Tag = &t
				d.Group = &g
			}
		}
	}
	if d.Tag == nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if d.RuleUses, err = s.rulesUsing(r, []int64{id}); err != nil {
		s.serverError(w, r, err)
		return
	}
	d.RuleNames = strings.Join(d.RuleUses, "、")
	v := s.tagsView(w, r, "tags.delete_tag.title", d.Tag.Name)
	if r.PostFormValue("confirm") == "yes" && len(d.RuleUses) == 0 {
		changes, err := s.Store.DeleteTag(r.Context(), id, tag.Cause{By: principalFrom(r).StaffID(), Reason: tag.ReasonManual})
		if err != nil && tagFormError(v, err) == "" {
			s.serverError(w, r, err)
			return
		}
		if err == nil {
			setFlash(w, "success", "flash.tag_deleted", d.Tag.Name, strconv.Itoa(len(changes)))
			http.Redirect(w, r, tagGroupURL(d.Group.ID), http.StatusSeeOther)
			return
		}
		d.Error = tagFormError(v, err)
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "tags_confirm", v)
}

// --- rules ---

// tagRuleRow is a rule in the list.
type tagRuleRow struct {
	*tag.Rule
	Add, Remove []tag.Tag
	Job         *tagrule.JobStatus
}

// tagIndex maps tag ids to tags, and tags to their group's name.
type tagIndex struct {
	tags   map[int64]tag.Tag
	groups map[int64]string
}

func (s *Server) tagIndex(r *http.Request) (*tagIndex, []*tag.Group, error) {
	groups, err := s.Store.ListTagGroups(r.Context())
	if err != nil {
		return nil, nil, err
	}
	ix := &tagIndex{tags: map[int64]tag.Tag{}, groups: map[int64]string{}}
	for _, g := range groups {
		ix.groups[g.ID] = g.Name
		for _, t := range g.Tags {
			ix.tags[t.ID] = t
		}
	}
	return ix, groups, nil
}

func (ix *tagIndex) list(ids []int64) []tag.Tag {
	out := make([]tag.Tag, 0, len(ids))
	for _, id := range ids {
		if t, ok := ix.tags[id]; ok {
			out = append(out, t)
		}
	}
	return out
}

func (s *Server) tagRulesPage(w http.ResponseWriter, r *http.Request) {
	rules, err := s.Store.TagRules(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	ix, _, err := s.tagIndex(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rows := make([]tagRuleRow, len(rules))
	for i, rule := range rules {
		rows[i] = tagRuleRow{Rule: rule, Add: ix.list(rule.Actions.Add), Remove: ix.list(rule.Actions.Remove)}
		if st, ok := s.tagJobs.Status(rule.ID); ok {
			rows[i].Job = &st
		}
	}
	v := s.tagsView(w, r, "tag_rules.title")
	v.Data = rows
	s.render(w, r, http.StatusOK, "tag_rules", v)
}

// whereRow is one property condition of an event trigger as the form shows it.
type whereRow struct{ Prop, Cmp, Value string }

// tagRuleForm is the rule editor's state: what the form sent, or the saved rule.
type tagRuleForm struct {
	Name        string
	Enabled     bool
	Kind        string
	EventName   string
	AtLeast     string
	WithinDays  string
	Where       []whereRow
	Condition   string // the condition tree as JSON
	Add, Remove map[int64]bool
}

// tagRuleData is the rule editor page.
type tagRuleData struct {
	ID          int64
	Rule        *tag.Rule // nil for a new rule
	Form        tagRuleForm
	Groups      []*tag.Group
	PropCmps    []string
	Job         *tagrule.JobStatus
	Error       string
	ErrorField  string
	Builder     string // the segment builder's schema, JSON
	CountedTree bool
}

// ruleForm fills the editor from a saved rule.
func ruleForm(rule *tag.Rule) tagRuleForm {
	f := tagRuleForm{Name: rule.Name, Enabled: rule.Enabled, Kind: rule.Trigger.Kind, Add: map[int64]bool{}, Remove: map[int64]bool{}}
	if e := rule.Trigger.Event; e != nil {
		f.EventName = e.Name
		if e.AtLeast > 0 {
			f.AtLeast = strconv.Itoa(e.AtLeast)
		}
		if e.WithinDays > 0 {
			f.WithinDays = strconv.Itoa(e.WithinDays)
		}
		for _, p := range e.Where {
			f.Where = append(f.Where, whereRow{Prop: p.Prop, Cmp: p.Cmp, Value: propValueText(p.Value)})
		}
	}
	if c := rule.Trigger.Condition; c != nil {
		b, _ := json.Marshal(c)
		f.Condition = string(b)
	}
	for _, id := range rule.Actions.Add {
		f.Add[id] = true
	}
	for _, id := range rule.Actions.Remove {
		f.Remove[id] = true
	}
	return f
}

var numberText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// propValueText writes a property value for a text box: lists joined by commas, text that
// would read as a number or a boolean in double quotes (see parsePropValue).
func propValueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = propValueText(e)
		}
		return strings.Join(parts, ", ")
	case string:
		if numberText.MatchString(x) || x == "true" || x == "false" || strings.ContainsAny(x, ",，") {
			return strconv.Quote(x)
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// parsePropValue reads a property value typed in a box. A number is a JSON number, true and
// false are booleans, anything else (or anything in double quotes) is text; in and not_in
// take a list separated by commas. is_set and is_not_set take no value.
func parsePropValue(cmp, text string) any {
	text = strings.TrimSpace(text)
	switch cmp {
	case "is_set", "is_not_set":
		return nil
	case "in", "not_in":
		var out []any
		for _, part := range splitList(text) {
			out = append(out, scalarValue(part))
		}
		return out
	case "contains":
		return unquote(text)
	}
	return scalarValue(text)
}

func splitList(text string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '，' || r == '、' }) {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func unquote(text string) string {
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		if s, err := strconv.Unquote(text); err == nil {
			return s
		}
	}
	return text
}

func scalarValue(text string) any {
	switch {
	case numberText.MatchString(text):
		f, _ := strconv.ParseFloat(text, 64)
		return f
	case text == "true":
		return true
	case text == "false":
		return false
	}
	return unquote(text)
}

// readRuleForm reads the editor's form; more adds an empty property row.
func readRuleForm(r *http.Request) tagRuleForm {
	r.ParseForm()
	f := tagRuleForm{
		Name: r.PostFormValue("name"), Enabled: r.PostFormValue("enabled") == "on", Kind: r.PostFormValue("kind"),
		EventName: r.PostFormValue("event"), AtLeast: r.PostFormValue("at_least"), WithinDays: r.PostFormValue("within_days"),
		Condition: r.PostFormValue("condition"), Add: map[int64]bool{}, Remove: map[int64]bool{},
	}
	props, cmps, vals := r.PostForm["where_prop"], r.PostForm["where_cmp"], r.PostForm["where_value"]
	for i := range props {
		row := whereRow{Prop: strings.TrimSpace(props[i])}
		if i < len(cmps) {
			row.Cmp = cmps[i]
		}
		if i < len(vals) {
			row.Value = vals[i]
		}
		if row.Prop != "" {
			f.Where = append(f.Where, row)
		}
	}
	for _, list := range []struct {
		name string
		set  map[int64]bool
	}{{"add", f.Add}, {"remove", f.Remove}} {
		for _, v := range r.PostForm[list.name] {
			if id, err := strconv.ParseInt(v, 10, 64); err == nil {
				list.set[id] = true
			}
		}
	}
	return f
}

// rule builds the rule the form describes; a malformed number or tree is a field error.
func (f tagRuleForm) rule(groups []*tag.Group) (*tag.Rule, error) {
	rule := &tag.Rule{Name: f.Name, Enabled: f.Enabled, Trigger: tag.Trigger{Kind: f.Kind}}
	num := func(field, text string) (int, error) {
		if strings.TrimSpace(text) == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return 0, &customer.FieldError{Field: field, Reason: "want a whole number"}
		}
		return n, nil
	}
	switch f.Kind {
	case tag.OnEvent:
		e := &tag.EventTrigger{Name: f.EventName}
		var err error
		if e.AtLeast, err = num("trigger.event.at_least", f.AtLeast); err != nil {
			return nil, err
		}
		if e.WithinDays, err = num("trigger.event.within_days", f.WithinDays); err != nil {
			return nil, err
		}
		for _, w := range f.Where {
			e.Where = append(e.Where, segment.PropCond{Prop: w.Prop, Cmp: w.Cmp, Value: parsePropValue(w.Cmp, w.Value)})
		}
		rule.Trigger.Event = e
	case tag.OnCondition:
		if strings.TrimSpace(f.Condition) == "" {
			return nil, &customer.FieldError{Field: "trigger.condition", Reason: "add at least one condition"}
		}
		n, err := segment.Parse([]byte(f.Condition))
		if err != nil {
			return nil, treeFieldError("trigger.condition", err)
		}
		rule.Trigger.Condition = n
	}
	// Tags in group and position order, as the form lists them.
	for _, g := range groups {
		for _, t := range g.Tags {
			if f.Add[t.ID] {
				rule.Actions.Add = append(rule.Actions.Add, t.ID)
			}
			if f.Remove[t.ID] {
				rule.Actions.Remove = append(rule.Actions.Remove, t.ID)
			}
		}
	}
	return rule, nil
}

// treeFieldError names a tree error's node under prefix.
func treeFieldError(prefix string, err error) error {
	var se *segment.Error
	if errors.As(err, &se) {
		field := prefix
		if se.Path != "" {
			field += "." + se.Path
		}
		return &customer.FieldError{Field: field, Reason: se.Msg}
	}
	return err
}

func (s *Server) renderTagRule(w http.ResponseWriter, r *http.Request, status int, d tagRuleData) {
	titleKey, args := "tag_rule.new", []any{}
	if d.Rule != nil {
		titleKey, args = "tag_rule.title", []any{d.Rule.Name}
	}
	v := s.tagsView(w, r, titleKey, args...)
	v.Crumbs = []crumb{{Label: v.T("nav.tags"), URL: "/tags"}, {Label: v.T("tag_rules.title"), URL: "/tags/rules"}, {Label: v.Title}}
	_, groups, err := s.tagIndex(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	b, err := s.builderSchema(r, v, 0)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Groups, d.PropCmps, d.Builder = groups, segment.PropOperators, b
	if d.Form.Kind == "" {
		d.Form.Kind = tag.OnEvent
	}
	// Room for two more property conditions; without JavaScript "more" adds another.
	d.Form.Where = append(d.Form.Where, whereRow{Cmp: "eq"}, whereRow{Cmp: "eq"})
	if d.ID != 0 {
		if st, ok := s.tagJobs.Status(d.ID); ok {
			d.Job = &st
		}
	}
	v.Data = d
	s.render(w, r, status, "tag_rule", v)
}

func (s *Server) tagRulePage(w http.ResponseWriter, r *http.Request) {
	d := tagRuleData{Form: tagRuleForm{Enabled: true, Kind: tag.OnEvent, Add: map[int64]bool{}, Remove: map[int64]bool{}}}
	if r.PathValue("id") != "" {
		rule, err := s.Store.TagRule(r.Context(), pathInt(r, "id"))
		if s.loadFailed(w, r, err) {
			return
		}
		d.ID, d.Rule, d.Form = rule.ID, rule, ruleForm(rule)
	}
	s.renderTagRule(w, r, http.StatusOK, d)
}

// saveTagRuleForm creates or changes a rule. A field error re-shows the editor with what was
// typed and the message; "more" only re-shows it with another property row.
func (s *Server) saveTagRuleForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := tagRuleData{Form: readRuleForm(r)}
	if r.PathValue("id") != "" {
		old, err := s.Store.TagRule(ctx, pathInt(r, "id"))
		if s.loadFailed(w, r, err) {
			return
		}
		d.ID, d.Rule = old.ID, old
	}
	if r.PostFormValue("action") == "more" {
		d.Form.Where = append(d.Form.Where, whereRow{Cmp: "eq"})
		s.renderTagRule(w, r, http.StatusOK, d)
		return
	}
	_, groups, err := s.tagIndex(r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rule, err := d.Form.rule(groups)
	if err == nil {
		var sch *store.SegmentSchema
		if sch, err = s.Store.SegmentSchema(ctx); err == nil {
			if d.Rule == nil {
				rule.CreatedBy = principalFrom(r).StaffID()
				err = s.Store.CreateTagRule(ctx, rule, sch)
			} else {
				rule.ID = d.Rule.ID
				err = s.Store.UpdateTagRule(ctx, rule, sch)
			}
		}
	}
	if err != nil {
		var fe *customer.FieldError
		var ex *tag.ExclusiveConflictError
		if !errors.As(err, &fe) && !errors.As(err, &ex) && !errors.Is(err, store.ErrConflict) {
			s.serverError(w, r, err)
			return
		}
		v := &view{Lang: requestLang(r)}
		d.Error = v.T("tag_rule.error", err.Error())
		if fe != nil {
			d.Error, d.ErrorField = v.T("tag_rule.error_field", fe.Field, fe.Reason), fe.Field
		}
		s.renderTagRule(w, r, http.StatusUnprocessableEntity, d)
		return
	}
	s.Log.Info("tag rule saved", "rule", rule.ID, "by", principalFrom(r).StaffID())
	setFlash(w, "success", "flash.tag_rule_saved", rule.Name)
	http.Redirect(w, r, tagRuleURL(rule.ID), http.StatusSeeOther)
}

func (s *Server) deleteTagRuleForm(w http.ResponseWriter, r *http.Request) {
	id := pathInt(r, "id")
	rule, err := s.Store.TagRule(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		v := s.tagsView(w, r, "tag_rule.delete_title", rule.Name)
		v.Data = ruleConfirm{Rule: rule}
		s.render(w, r, http.StatusOK, "tag_rule_delete", v)
		return
	}
	if st, ok := s.tagJobs.Status(id); ok && st.State == tagrule.JobRunning {
		setFlash(w, "error", "flash.tag_rule_busy", rule.Name)
		http.Redirect(w, r, tagRuleURL(id), http.StatusSeeOther)
		return
	}
	if err := s.Store.DeleteTagRule(r.Context(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "flash.tag_rule_deleted", rule.Name)
	http.Redirect(w, r, "/tags/rules", http.StatusSeeOther)
}

// ruleConfirm is the page that asks before a rule is deleted.
type ruleConfirm struct{ Rule *tag.Rule }

// backfillTagRuleForm starts a back-fill and goes back to the rule, where its progress shows.
func (s *Server) backfillTagRuleForm(w http.ResponseWriter, r *http.Request) {
	id := pathInt(r, "id")
	rule, err := s.Store.TagRule(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	_, err = s.tagJobs.Start(r.Context(), id)
	switch {
	case errors.Is(err, tagrule.ErrJobRunning):
		setFlash(w, "error", "flash.backfill_running", rule.Name)
	case err != nil:
		s.serverError(w, r, err)
		return
	default:
		setFlash(w, "success", "flash.backfill_started", rule.Name)
	}
	http.Redirect(w, r, tagRuleURL(id)+"#backfill", http.StatusSeeOther)
}

// --- the customer profile ---

// profileTags is the tags section of the profile.
type profileTags struct {
	Assigned []tag.Assignment
	History  []tag.HistoryEntry
	Groups   []*tag.Group // what can be added
	Staff    map[int64]string
}

// customerTags reads the profile's tags section.
func (s *Server) customerTags(r *http.Request, customerID int64) (*profileTags, error) {
	ctx := r.Context()
	as, err := s.Store.CustomerTags(ctx, customerID)
	if err != nil {
		return nil, err
	}
	hist, err := s.Store.TagHistory(ctx, customerID, 0, 20)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.ListTagGroups(ctx)
	if err != nil {
		return nil, err
	}
	names := map[int64]string{}
	if len(hist) > 0 || len(as) > 0 {
		all, err := s.Store.ListStaff(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range all {
			names[m.ID] = m.Name
		}
	}
	return &profileTags{Assigned: as, History: hist, Groups: groups, Staff: names}, nil
}

// scopedCustomer is the customer of the path, or false after answering 404: unknown, merged
// away or outside the viewer's data scope.
func (s *Server) scopedCustomer(w http.ResponseWriter, r *http.Request) (*customer.Customer, bool) {
	c, err := s.Store.Customer(r.Context(), pathInt(r, "id"))
	p := principalFrom(r)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.MergedInto != 0 || !p.Scope().Allows(c.OwnerID))) {
		s.renderError(w, r, http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil, false
	}
	return c, true
}

// customerTagForm adds a tag to a customer (in a single-choice group it replaces the other).
func (s *Server) customerTagForm(w http.ResponseWriter, r *http.Request) {
	c, ok := s.scopedCustomer(w, r)
	if !ok {
		return
	}
	back := "/customers/" + strconv.FormatInt(c.ID, 10) + "#tags"
	t, err := s.Store.Tag(r.Context(), formID(r, "tag"))
	if errors.Is(err, store.ErrNotFound) {
		setFlash(w, "error", "flash.tag_pick")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if _, err := s.Store.AssignTag(r.Context(), c.ID, t.ID, tag.Cause{By: principalFrom(r).StaffID(), Reason: tag.ReasonManual}); err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "flash.customer_tagged", t.Name)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) customerUntagForm(w http.ResponseWriter, r *http.Request) {
	c, ok := s.scopedCustomer(w, r)
	if !ok {
		return
	}
	t, err := s.Store.Tag(r.Context(), pathInt(r, "tagId"))
	if s.loadFailed(w, r, err) {
		return
	}
	if _, err := s.Store.RemoveTag(r.Context(), c.ID, t.ID, tag.Cause{By: principalFrom(r).StaffID(), Reason: tag.ReasonManual}); err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "flash.customer_untagged", t.Name)
	http.Redirect(w, r, "/customers/"+strconv.FormatInt(c.ID, 10)+"#tags", http.StatusSeeOther)
}
