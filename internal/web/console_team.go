package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The console's 设置 → 部门 and 设置 → 角色与权限: the department tree with its forms, the
// roles with their matrix, and a matrix editor for custom roles. Handlers call the same store
// functions as the API (api_team.go).

func (s *Server) routesTeamConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /settings/departments", s.page(s.departmentsPage, staff.Admin))
	handle("POST /settings/departments", s.page(s.saveDepartmentForm, staff.Admin))
	handle("POST /settings/departments/{id}", s.page(s.saveDepartmentForm, staff.Admin))
	handle("POST /settings/departments/{id}/delete", s.page(s.deleteDepartmentForm, staff.Admin))
	handle("GET /settings/roles", s.page(s.rolesPage, staff.Admin))
	handle("POST /settings/roles", s.page(s.createRoleForm, staff.Admin))
	handle("GET /settings/roles/{id}", s.page(s.rolePage, staff.Admin))
	handle("POST /settings/roles/{id}", s.page(s.saveRoleForm, staff.Admin))
	handle("POST /settings/roles/{id}/delete", s.page(s.deleteRoleForm, staff.Admin))
}

// departmentsData is the departments page.
type departmentsData struct {
	Rows  []*staff.DepartmentNode
	Edit  *staff.DepartmentNode // the department being edited (?edit=ID), or nil
	Form  staff.Department
	Error string
}

func (s *Server) departmentsPage(w http.ResponseWriter, r *http.Request) {
	d := departmentsData{}
	if id, err := strconv.ParseInt(r.URL.Query().Get("edit"), 10, 64); err == nil {
		d.Form.ID = id
	}
	s.renderDepartments(w, r, http.StatusOK, d)
}

func (s *Server) renderDepartments(w http.ResponseWriter, r *http.Request, status int, d departmentsData) {
	list, err := s.Store.ListDepartments(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Rows = staff.FlattenTree(staff.DepartmentTree(list))
	for _, n := range d.Rows {
		if d.Form.ID != 0 && n.ID == d.Form.ID {
			d.Edit = n
			if d.Form.Name == "" {
				d.Form = n.Department
			}
		}
	}
	v := s.settingsView(w, r, "team.departments.title")
	v.Data = d
	s.render(w, r, status, "departments", v)
}

// fieldMessage is a FieldError as the console says it: the field's label and the reason.
func fieldMessage(v *view, err error) (string, bool) {
	var fe *customer.FieldError
	if !errors.As(err, &fe) {
		return "", false
	}
	return v.T("team.error", v.T("team.field."+strings.SplitN(fe.Field, ".", 2)[0]), fe.Reason), true
}

func (s *Server) saveDepartmentForm(w http.ResponseWriter, r *http.Request) {
	d := staff.Department{Name: r.PostFormValue("name")}
	d.ParentID, _ = strconv.ParseInt(r.PostFormValue("parent_id"), 10, 64)
	sort, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("sort")))
	if err != nil && strings.TrimSpace(r.PostFormValue("sort")) != "" {
		sort = -2_000_000 // refused by Clean, naming the field
	}
	d.Sort = sort
	if id := r.PathValue("id"); id != "" {
		if d.ID, err = strconv.ParseInt(id, 10, 64); err != nil {
			s.renderError(w, r, http.StatusNotFound)
			return
		}
		err = s.Store.UpdateDepartment(r.Context(), &d)
	} else {
		err = s.Store.CreateDepartment(r.Context(), &d)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.renderError(w, r, http.StatusNotFound)
			return
		}
		if msg, ok := fieldMessage(s.newView(w, r, "settings", "team.departments.title"), err); ok {
			s.renderDepartments(w, r, http.StatusUnprocessableEntity, departmentsData{Form: d, Error: msg})
			return
		}
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "team.departments.saved", d.Name)
	http.Redirect(w, r, "/settings/departments", http.StatusSeeOther)
}

func (s *Server) deleteDepartmentForm(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	err = s.Store.DeleteDepartment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if msg, ok := fieldMessage(s.newView(w, r, "settings", "team.departments.title"), err); ok {
		s.renderDepartments(w, r, http.StatusUnprocessableEntity, departmentsData{Form: staff.Department{ID: id}, Error: msg})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	setFlash(w, "success", "team.departments.deleted")
	http.Redirect(w, r, "/settings/departments", http.StatusSeeOther)
}

// matrixCell is one cell of the matrix editor.
type matrixCell struct {
	Perm    string // area.action
	Offered bool   // the area has this action
	Granted bool
}

// matrixRow is one area of the matrix editor.
type matrixRow struct {
	Area   staff.Area
	Parent staff.Area
	Cells  []matrixCell
}

// matrixActions are the editor's columns.
var matrixActions = []staff.Action{staff.View, staff.Edit, staff.Export, staff.Reveal, staff.Assign}

// matrixRows lays a matrix out for the editor and the read-only grids.
func matrixRows(m staff.Matrix) []matrixRow {
	rows := make([]matrixRow, 0, len(staff.Areas))
	for _, d := range staff.Areas {
		row := matrixRow{Area: d.Area, Parent: d.Parent}
		for _, x := range matrixActions {
			p := staff.Perm(d.Area, x)
			row.Cells = append(row.Cells, matrixCell{Perm: p.String(), Offered: p.Valid(), Granted: m.Allows(p)})
		}
		rows = append(rows, row)
	}
	return rows
}

// rolesData is the roles page.
type rolesData struct {
	Roles     []*staff.RoleDef
	Grids     map[staff.Role][]matrixRow
	Actions   []staff.Action
	Templates []staff.RoleDef
	Form      struct{ Name, Key, Template string }
	Error     string
}

func (s *Server) rolesPage(w http.ResponseWriter, r *http.Request) {
	s.renderRoles(w, r, http.StatusOK, rolesData{})
}

func (s *Server) renderRoles(w http.ResponseWriter, r *http.Request, status int, d rolesData) {
	roles, err := s.Store.ListRoles(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Roles, d.Actions, d.Templates, d.Grids = roles, matrixActions, staff.Templates, map[staff.Role][]matrixRow{}
	for _, role := range roles {
		d.Grids[role.Key] = matrixRows(role.Matrix)
	}
	v := s.settingsView(w, r, "team.roles.title")
	v.Data = d
	s.render(w, r, status, "roles", v)
}

func (s *Server) createRoleForm(w http.ResponseWriter, r *http.Request) {
	def := &staff.RoleDef{Name: r.PostFormValue("name"), Key: staff.Role(strings.TrimSpace(r.PostFormValue("key"))), Template: r.PostFormValue("template")}
	if def.Template == "" {
		def.Scope = staff.DataOwn // a blank role starts with nothing and one's own customers
	}
	if err := s.Store.CreateRole(r.Context(), def); err != nil {
		if msg, ok := fieldMessage(s.newView(w, r, "settings", "team.roles.title"), err); ok {
			d := rolesData{Error: msg}
			d.Form.Name, d.Form.Key, d.Form.Template = r.PostFormValue("name"), r.PostFormValue("key"), def.Template
			s.renderRoles(w, r, http.StatusUnprocessableEntity, d)
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.auditRole(r, def, "create")
	setFlash(w, "success", "team.roles.created", def.Name)
	http.Redirect(w, r, "/settings/roles/"+strconv.FormatInt(def.ID, 10), http.StatusSeeOther)
}

// roleData is the matrix editor of one custom role.
type roleData struct {
	Role    *staff.RoleDef
	Rows    []matrixRow
	Actions []staff.Action
	Scopes  []staff.DataScope
	Error   string
}

func (s *Server) rolePage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	def, err := s.Store.RoleByID(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	s.renderRole(w, r, http.StatusOK, roleData{Role: def})
}

func (s *Server) renderRole(w http.ResponseWriter, r *http.Request, status int, d roleData) {
	d.Rows, d.Actions, d.Scopes = matrixRows(d.Role.Matrix), matrixActions, []staff.DataScope{staff.DataAll, staff.DataDepartment, staff.DataOwn}
	v := s.newView(w, r, "settings", "team.role.title", d.Role.Name)
	v.Crumbs = []crumb{{Label: v.T("nav.settings"), URL: "/settings"}, {Label: v.T("team.roles.title"), URL: "/settings/roles"}, {Label: d.Role.Name}}
	v.Data = d
	s.render(w, r, status, "role", v)
}

func (s *Server) saveRoleForm(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	def, err := s.Store.RoleByID(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest)
		return
	}
	def.Name, def.Description, def.Scope = r.PostFormValue("name"), r.PostFormValue("description"), staff.DataScope(r.PostFormValue("data_scope"))
	def.Matrix = staff.Matrix{}
	for _, cell := range r.PostForm["perm"] {
		a, x, _ := strings.Cut(cell, ".")
		def.Matrix[staff.Area(a)] = append(def.Matrix[staff.Area(a)], staff.Action(x))
	}
	if err := s.Store.UpdateRole(r.Context(), def); err != nil {
		if msg, ok := fieldMessage(s.newView(w, r, "settings", "team.roles.title"), err); ok {
			s.renderRole(w, r, http.StatusUnprocessableEntity, roleData{Role: def, Error: msg})
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.auditRole(r, def, "update")
	setFlash(w, "success", "team.roles.saved", def.Name)
	http.Redirect(w, r, "/settings/roles/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (s *Server) deleteRoleForm(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	def, err := s.Store.RoleByID(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	if err := s.Store.DeleteRole(r.Context(), id); err != nil {
		if msg, ok := fieldMessage(s.newView(w, r, "settings", "team.roles.title"), err); ok {
			s.renderRole(w, r, http.StatusUnprocessableEntity, roleData{Role: def, Error: msg})
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.auditRole(r, def, "delete")
	setFlash(w, "success", "team.roles.deleted", def.Name)
	http.Redirect(w, r, "/settings/roles", http.StatusSeeOther)
}

// roleOption is a role as the console's pickers show it.
type roleOption struct {
	Key  staff.Role
	Name string
	Hint string
}

// teamChoices are what the staff and key forms pick from: every role (built-in and custom)
// with its name, and the departments in tree order.
type teamChoices struct {
	RoleOptions []roleOption
	RoleNames   map[staff.Role]string
	Departments []*staff.DepartmentNode
}

func (s *Server) teamChoices(r *http.Request, v *view) (teamChoices, error) {
	out := teamChoices{RoleNames: map[staff.Role]string{}}
	roles, err := s.Store.ListRoles(r.Context())
	if err != nil {
		return out, err
	}
	for _, d := range roles {
		o := roleOption{Key: d.Key, Name: d.Name, Hint: d.Description}
		if d.BuiltIn {
			o.Name, o.Hint = v.T("role."+string(d.Key)), v.T("role_hint."+string(d.Key))
		}
		out.RoleOptions = append(out.RoleOptions, o)
		out.RoleNames[d.Key] = o.Name
	}
	list, err := s.Store.ListDepartments(r.Context())
	if err != nil {
		return out, err
	}
	out.Departments = staff.FlattenTree(staff.DepartmentTree(list))
	return out, nil
}

// formDepartment places m in the department a staff form chose: department_id when the form
// has one (0: none), else the older free-text department, found by name or made.
func formDepartment(r *http.Request, m *staff.Staff) {
	if v, ok := r.PostForm["department_id"]; ok && len(v) > 0 {
		m.DepartmentID, _ = strconv.ParseInt(v[0], 10, 64)
		m.Department = ""
		return
	}
	m.DepartmentID, m.Department = 0, strings.TrimSpace(r.PostFormValue("department"))
}
