package web

import (
	"net/http"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// The team over HTTP: departments (a tree), roles with their permission matrix and data
// scope, the reveal of a customer's contact details, and what /me says about permissions.
// Authorisation is the route's cell of the matrix (authz.go); changes of roles are audited.

// apiDepartments is the answer of GET /api/v1/departments: the tree, and the same
// departments flat in tree order (for a <select>).
type apiDepartments struct {
	Tree        []*staff.DepartmentNode `json:"tree"`
	Departments []*staff.DepartmentNode `json:"departments"`
}

func (s *Server) apiListDepartments(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ListDepartments(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	tree := staff.DepartmentTree(list)
	flat := staff.FlattenTree(tree)
	if flat == nil {
		flat = []*staff.DepartmentNode{}
	}
	if tree == nil {
		tree = []*staff.DepartmentNode{}
	}
	writeJSON(w, http.StatusOK, apiDepartments{Tree: tree, Departments: flat})
}

// apiDepartmentBody is the body of POST and PATCH /api/v1/departments; on PATCH absent fields
// stay as they are.
type apiDepartmentBody struct {
	Name     *string `json:"name"`
	ParentID *int64  `json:"parent_id"`
	Sort     *int    `json:"sort"`
}

func (b *apiDepartmentBody) apply(d *staff.Department) {
	if b.Name != nil {
		d.Name = *b.Name
	}
	if b.ParentID != nil {
		d.ParentID = *b.ParentID
	}
	if b.Sort != nil {
		d.Sort = *b.Sort
	}
}

func (s *Server) apiCreateDepartment(w http.ResponseWriter, r *http.Request) {
	var body apiDepartmentBody
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	d := &staff.Department{}
	body.apply(d)
	if err := s.Store.CreateDepartment(r.Context(), d); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/departments/"+strconv.FormatInt(d.ID, 10))
	writeJSON(w, http.StatusCreated, d)
}

// apiDepartment is one department with its staff.
type apiDepartment struct {
	*staff.Department
	Members []*staff.Staff `json:"members"`
}

func (s *Server) apiGetDepartment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := s.Store.DepartmentByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	all, err := s.Store.ListStaff(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := apiDepartment{Department: d, Members: []*staff.Staff{}}
	for _, m := range all {
		if m.DepartmentID == id {
			out.Members = append(out.Members, m)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body apiDepartmentBody
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	d, err := s.Store.DepartmentByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	body.apply(d)
	if err := s.Store.UpdateDepartment(r.Context(), d); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) apiDeleteDepartment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteDepartment(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiRoles is the answer of GET /api/v1/roles: every role, the matrix's shape and the
// templates custom roles start from.
type apiRoles struct {
	Roles     []*staff.RoleDef `json:"roles"`
	Areas     []staff.AreaDef  `json:"areas"`
	Templates []staff.RoleDef  `json:"templates"`
}

func (s *Server) apiListRoles(w http.ResponseWriter, r *http.Request) {
	roles, err := s.Store.ListRoles(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiRoles{Roles: roles, Areas: staff.Areas, Templates: staff.Templates})
}

// apiRoleBody is the body of POST and PATCH /api/v1/roles; on PATCH absent fields stay as
// they are and key and template cannot change.
type apiRoleBody struct {
	Key         *staff.Role      `json:"key"`
	Template    *string          `json:"template"`
	Name        *string          `json:"name"`
	Description *string          `json:"description"`
	Matrix      *staff.Matrix    `json:"matrix"`
	Scope       *staff.DataScope `json:"data_scope"`
}

func (b *apiRoleBody) apply(d *staff.RoleDef) {
	if b.Name != nil {
		d.Name = *b.Name
	}
	if b.Description != nil {
		d.Description = *b.Description
	}
	if b.Matrix != nil {
		d.Matrix = *b.Matrix
	}
	if b.Scope != nil {
		d.Scope = *b.Scope
	}
}

func (s *Server) apiCreateRole(w http.ResponseWriter, r *http.Request) {
	var body apiRoleBody
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	d := &staff.RoleDef{}
	if body.Key != nil {
		d.Key = *body.Key
	}
	if body.Template != nil {
		d.Template = *body.Template
	}
	body.apply(d)
	if err := s.Store.CreateRole(r.Context(), d); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.auditRole(r, d, "create")
	w.Header().Set("Location", "/api/v1/roles/"+strconv.FormatInt(d.ID, 10))
	writeJSON(w, http.StatusCreated, d)
}

// roleByPath reads {id}: a custom role's id. Built-in roles are not in the store and cannot
// be changed (404).
func (s *Server) roleByPath(w http.ResponseWriter, r *http.Request) (*staff.RoleDef, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	d, err := s.Store.RoleByID(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	return d, true
}

func (s *Server) apiGetRole(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.roleByPath(w, r); ok {
		writeJSON(w, http.StatusOK, d)
	}
}

func (s *Server) apiUpdateRole(w http.ResponseWriter, r *http.Request) {
	var body apiRoleBody
	if !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	d, ok := s.roleByPath(w, r)
	if !ok {
		return
	}
	if body.Key != nil && *body.Key != d.Key {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "a role's key cannot change (staff and keys hold it)", "key")
		return
	}
	if body.Template != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "a template only fills a new role", "template")
		return
	}
	body.apply(d)
	if err := s.Store.UpdateRole(r.Context(), d); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.auditRole(r, d, "update")
	d, err := s.Store.RoleByID(r.Context(), d.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) apiDeleteRole(w http.ResponseWriter, r *http.Request) {
	d, ok := s.roleByPath(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteRole(r.Context(), d.ID); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.auditRole(r, d, "delete")
	w.WriteHeader(http.StatusNoContent)
}

// auditRole records a change of a custom role: permission changes are audited.
func (s *Server) auditRole(r *http.Request, d *staff.RoleDef, change string) {
	s.appendAudit(r, audit.RoleUpdate, "role:"+string(d.Key), map[string]any{
		"change": change, "name": d.Name, "permissions": d.Matrix.Permissions(), "data_scope": d.Scope,
	})
}

// appendAudit writes an audit entry for the request's principal (audit.go: Server.audit,
// which also takes the client address through a trusted proxy); a failure is logged and
// returned.
func (s *Server) appendAudit(r *http.Request, action, target string, detail map[string]any) error {
	return s.audit(r, action, target, detail)
}

// apiRevealed is the answer of POST /api/v1/customers/{id}/reveal: the contact details in full.
type apiRevealed struct {
	ID         int64               `json:"id"`
	Phone      string              `json:"phone"`
	Email      string              `json:"email"`
	Identities []customer.Identity `json:"identities"`
}

// apiRevealCustomer shows one customer's phone, email and contact identities in full, to a
// principal with customers.reveal who may see the customer. The reveal is written to the
// audit log first: no entry, no reveal.
func (s *Server) apiRevealCustomer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	out, err := s.reveal(r, c)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// reveal audits and returns a customer's contact details in full.
func (s *Server) reveal(r *http.Request, c *customer.Customer) (*apiRevealed, error) {
	ids, err := s.Store.Identities(r.Context(), c.ID)
	if err != nil {
		return nil, err
	}
	out := &apiRevealed{ID: c.ID, Phone: c.Phone, Email: c.Email, Identities: []customer.Identity{}}
	for _, id := range ids {
		if id.Kind == customer.PhoneID || id.Kind == customer.EmailID {
			out.Identities = append(out.Identities, id)
		}
	}
	if err := s.appendAudit(r, audit.CustomerReveal, "customer:"+strconv.FormatInt(c.ID, 10), map[string]any{"fields": []string{"phone", "email"}}); err != nil {
		return nil, err
	}
	return out, nil
}

// apiPermissions is what /api/v1/me says about the principal's role.
type apiPermissions struct {
	Role        staff.Role      `json:"role"`
	RoleName    string          `json:"role_name"`
	BuiltIn     bool            `json:"built_in"`
	Permissions []string        `json:"permissions"` // area.action cells granted
	Matrix      staff.Matrix    `json:"matrix"`
	DataScope   staff.DataScope `json:"data_scope"`
	// ScopeOwners lists the staff whose customers a limited scope sees (own: oneself;
	// department: everyone in one's department subtree); absent for every customer.
	ScopeOwners []int64 `json:"scope_owners,omitempty"`
	Masked      bool    `json:"masked"` // phone numbers and emails are shown masked
}

func permissionsOf(p *Principal) apiPermissions {
	def := p.Def
	if def == nil {
		def = &staff.RoleDef{Key: p.Role, Matrix: staff.Matrix{}, Scope: staff.DataOwn}
	}
	out := apiPermissions{Role: def.Key, RoleName: def.Name, BuiltIn: def.BuiltIn, Permissions: def.Matrix.Permissions(),
		Matrix: def.Matrix, DataScope: def.Scope, Masked: !p.Reveals()}
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	if sc := p.Scope(); sc.Limited {
		out.ScopeOwners = append([]int64{}, sc.Owners...)
	}
	return out
}

// maskFor returns c as the principal may see it: masked without the reveal permission.
func maskFor(p *Principal, c *customer.Customer) *customer.Customer {
	if c == nil || p.Reveals() {
		return c
	}
	return c.Masked()
}

// maskAll masks a list of customers in place of the principal without reveal.
func maskAll(p *Principal, cs []*customer.Customer) []*customer.Customer {
	if p.Reveals() {
		return cs
	}
	out := make([]*customer.Customer, len(cs))
	for i, c := range cs {
		out[i] = c.Masked()
	}
	return out
}

// maskIdentities masks the contact identities of the principal without reveal.
func maskIdentities(p *Principal, ids []customer.Identity) []customer.Identity {
	if p.Reveals() {
		return ids
	}
	out := make([]customer.Identity, len(ids))
	for i, id := range ids {
		out[i] = customer.MaskIdentity(id)
	}
	return out
}
