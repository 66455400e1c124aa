package staff

import (
	"fmt"
	"slices"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Area is one row of the permission matrix: a part of siyu a role may see or change.
type Area string

// The areas. Staff and audit sit under settings in the console but are granted apart, so that
// a team lead can manage people without touching integrations or reading the audit log.
const (
	AreaCustomers  Area = "customers"
	AreaTags       Area = "tags"
	AreaSegments   Area = "segments"
	AreaModels     Area = "models"
	AreaSOP        Area = "sop"
	AreaBroadcasts Area = "broadcasts"
	AreaContent    Area = "content" // the content library and staff personas (人设)
	// AreaEngage is the engagement tools: surveys, channel codes (渠道活码), groups, check-ins.
	AreaEngage    Area = "engage"
	AreaAnalytics Area = "analytics"
	AreaSettings  Area = "settings"
	AreaStaff     Area = "staff" // staff, departments and roles
	AreaAudit     Area = "audit" // the audit log
)

// Action is one column of the permission matrix.
type Action string

// The actions. Edit, export and reveal each imply view (Matrix.Normalize adds it).
const (
	View   Action = "view"
	Edit   Action = "edit"
	Export Action = "export"
	// Reveal shows customers' phone numbers and emails in full; without it they are masked.
	Reveal Action = "reveal"
	// Assign gives customers owners: one, in bulk, through transfers (离职继承), the pool's rules.
	Assign Action = "assign"
)

// AreaDef is an area and the actions that mean something in it, in display order.
type AreaDef struct {
	Area    Area     `json:"area"`
	Parent  Area     `json:"parent,omitempty"` // staff and audit sit under settings
	Actions []Action `json:"actions"`
}

// Areas is the matrix's shape: every area with the actions it offers.
var Areas = []AreaDef{
	{Area: AreaCustomers, Actions: []Action{View, Edit, Export, Reveal, Assign}},
	{Area: AreaTags, Actions: []Action{View, Edit}},
	{Area: AreaSegments, Actions: []Action{View, Edit, Export}},
	{Area: AreaModels, Actions: []Action{View, Edit}},
	{Area: AreaSOP, Actions: []Action{View, Edit}},
	{Area: AreaBroadcasts, Actions: []Action{View, Edit}},
	{Area: AreaContent, Actions: []Action{View, Edit}},
	{Area: AreaEngage, Actions: []Action{View, Edit, Export}},
	{Area: AreaAnalytics, Actions: []Action{View, Edit, Export}}, // edit: goals (OKR)
	{Area: AreaSettings, Actions: []Action{View, Edit}},
	{Area: AreaStaff, Parent: AreaSettings, Actions: []Action{View, Edit}},
	{Area: AreaAudit, Parent: AreaSettings, Actions: []Action{View, Export}},
}

// areaDef returns the definition of a, or nil.
func areaDef(a Area) *AreaDef {
	for i := range Areas {
		if Areas[i].Area == a {
			return &Areas[i]
		}
	}
	return nil
}

// Permission is one cell of the matrix, written "area.action" (customers.reveal).
type Permission struct {
	Area   Area
	Action Action
}

// Perm is a Permission.
func Perm(a Area, x Action) Permission { return Permission{Area: a, Action: x} }

func (p Permission) String() string { return string(p.Area) + "." + string(p.Action) }

// IsZero reports whether p names no permission (a route every signed-in principal may use).
func (p Permission) IsZero() bool { return p.Area == "" }

// Valid reports whether p is a cell of the matrix.
func (p Permission) Valid() bool {
	d := areaDef(p.Area)
	return d != nil && slices.Contains(d.Actions, p.Action)
}

// Matrix is what a role may do: for each area, the actions granted. Areas absent are denied.
type Matrix map[Area][]Action

// Allows reports whether the matrix grants p.
func (m Matrix) Allows(p Permission) bool { return slices.Contains(m[p.Area], p.Action) }

// Permissions lists the granted cells in the order of Areas.
func (m Matrix) Permissions() []string {
	var out []string
	for _, d := range Areas {
		for _, x := range d.Actions {
			if m.Allows(Perm(d.Area, x)) {
				out = append(out, Perm(d.Area, x).String())
			}
		}
	}
	return out
}

// Normalize checks every cell and returns the matrix in canonical form: actions in the order of
// Areas, no duplicates, view added wherever another action of the area is granted, and empty
// areas dropped. An unknown area or an action the area does not offer is a FieldError naming
// it (matrix.customers, matrix.tags).
func (m Matrix) Normalize() (Matrix, error) {
	out := Matrix{}
	for a, xs := range m {
		d := areaDef(a)
		if d == nil {
			return nil, &customer.FieldError{Field: "matrix." + string(a), Reason: "unknown area (want " + areaNames() + ")"}
		}
		for _, x := range xs {
			if !slices.Contains(d.Actions, x) {
				return nil, &customer.FieldError{Field: "matrix." + string(a), Reason: fmt.Sprintf("unknown action %q (want %s)", x, actionNames(d.Actions))}
			}
		}
		var got []Action
		for _, x := range d.Actions {
			if slices.Contains(xs, x) || (x == View && len(xs) > 0) {
				got = append(got, x)
			}
		}
		if len(got) > 0 {
			out[a] = got
		}
	}
	return out, nil
}

func areaNames() string {
	var s []string
	for _, d := range Areas {
		s = append(s, string(d.Area))
	}
	return strings.Join(s, ", ")
}

func actionNames(xs []Action) string {
	var s []string
	for _, x := range xs {
		s = append(s, string(x))
	}
	return strings.Join(s, ", ")
}

// DataScope is how far a role sees customers.
type DataScope string

// The data scopes.
const (
	DataAll        DataScope = "all"        // every customer
	DataDepartment DataScope = "department" // customers owned by anyone in my department's subtree
	DataOwn        DataScope = "own"        // customers I own
)

// Valid reports whether d is a known scope.
func (d DataScope) Valid() bool { return d == DataAll || d == DataDepartment || d == DataOwn }

// CustomerScope is a data scope resolved for one principal: every customer (the zero value), or only
// the customers owned by one of Owners. A limited scope with no owners sees nobody.
type CustomerScope struct {
	Limited bool
	Owners  []int64 // sorted, when Limited
}

// OwnersScope limits a scope to the customers of these owners (none: nobody).
func OwnersScope(ids ...int64) CustomerScope {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return CustomerScope{Limited: true, Owners: slices.Compact(ids)}
}

// OwnerScope turns the older single-owner form (0 every customer, a staff id that member's
// customers, negative nobody) into a CustomerScope.
func OwnerScope(ownerID int64) CustomerScope {
	switch {
	case ownerID == 0:
		return CustomerScope{}
	case ownerID < 0:
		return OwnersScope()
	}
	return OwnersScope(ownerID)
}

// All reports whether the scope sees every customer.
func (s CustomerScope) All() bool { return !s.Limited }

// Allows reports whether a customer with this owner (0: unowned) is in the scope.
func (s CustomerScope) Allows(ownerID int64) bool {
	if !s.Limited {
		return true
	}
	_, ok := slices.BinarySearch(s.Owners, ownerID)
	return ok && ownerID != 0
}

// RoleDef is a role: a built-in preset or a custom role made by an admin.
type RoleDef struct {
	ID int64 `json:"id,omitempty"` // 0 for built-in roles
	// Key is what staff and keys are assigned (admin, operator, or a custom role's key).
	Key         Role      `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	BuiltIn     bool      `json:"built_in"`
	Template    string    `json:"template,omitempty"` // the template a custom role started from
	Matrix      Matrix    `json:"matrix"`
	Scope       DataScope `json:"data_scope"`
	// Members counts staff and API keys with the role (filled by lists).
	Members int `json:"members"`
}

// Allows reports whether the role grants p; the zero permission is granted to every role.
func (d *RoleDef) Allows(p Permission) bool { return p.IsZero() || d.Matrix.Allows(p) }

func full(xs ...Action) []Action { return xs }

// Presets are the built-in roles as matrix presets. They reproduce what each role could do
// before the matrix existed, except that sales now sees phone numbers and emails masked.
var Presets = []RoleDef{
	{Key: Admin, Name: "管理员", BuiltIn: true, Scope: DataAll, Matrix: adminMatrix()},
	{Key: Operator, Name: "运营", BuiltIn: true, Scope: DataAll, Matrix: Matrix{
		AreaCustomers:  full(View, Edit, Export, Reveal, Assign),
		AreaTags:       full(View, Edit),
		AreaSegments:   full(View, Edit, Export),
		AreaModels:     full(View, Edit),
		AreaSOP:        full(View, Edit),
		AreaBroadcasts: full(View, Edit),
		AreaContent:    full(View),
		AreaEngage:     full(View, Edit, Export),
		AreaAnalytics:  full(View, Edit, Export),
	}},
	{Key: Sales, Name: "销售", BuiltIn: true, Scope: DataOwn, Matrix: Matrix{
		AreaCustomers: full(View, Edit),
		AreaTags:      full(View),
		AreaSegments:  full(View),
		AreaModels:    full(View),
		AreaContent:   full(View),
		AreaEngage:    full(View),
		AreaAnalytics: full(View, Export),
	}},
	{Key: Content, Name: "内容", BuiltIn: true, Scope: DataAll, Matrix: Matrix{
		AreaContent: full(View, Edit),
	}},
}

func adminMatrix() Matrix {
	m := Matrix{}
	for _, d := range Areas {
		m[d.Area] = slices.Clone(d.Actions)
	}
	return m
}

// Preset returns the built-in role r, or nil when r is not built in.
func Preset(r Role) *RoleDef {
	for i := range Presets {
		if Presets[i].Key == r {
			d := Presets[i]
			return &d
		}
	}
	return nil
}

// Templates are starting points for custom roles, named after the private-domain team. A
// template is copied into a new role; changing the role later does not touch the template.
var Templates = []RoleDef{
	{Key: "content_ops", Name: "内容运营", Description: "维护话术、素材与人设，查看人群与数据", Scope: DataAll, Matrix: Matrix{
		AreaContent:   full(View, Edit),
		AreaEngage:    full(View),
		AreaTags:      full(View),
		AreaSegments:  full(View),
		AreaAnalytics: full(View),
	}},
	{Key: "copywriter", Name: "文案策划", Description: "撰写话术与素材，不接触客户数据", Scope: DataOwn, Matrix: Matrix{
		AreaContent: full(View, Edit),
	}},
	{Key: "growth_ops", Name: "增长运营", Description: "人群、模型、SOP、群发与互动工具，导出人群，看全量数据", Scope: DataAll, Matrix: Matrix{
		AreaCustomers:  full(View, Export),
		AreaEngage:     full(View, Edit, Export),
		AreaTags:       full(View, Edit),
		AreaSegments:   full(View, Edit, Export),
		AreaModels:     full(View, Edit),
		AreaSOP:        full(View, Edit),
		AreaBroadcasts: full(View, Edit),
		AreaContent:    full(View),
		AreaAnalytics:  full(View, Export),
	}},
	{Key: "user_ops", Name: "用户运营", Description: "维护客户与标签、分配客户，设计 SOP，可查看完整联系方式", Scope: DataAll, Matrix: Matrix{
		AreaCustomers:  full(View, Edit, Reveal, Assign),
		AreaEngage:     full(View, Edit),
		AreaTags:       full(View, Edit),
		AreaSegments:   full(View, Edit),
		AreaModels:     full(View),
		AreaSOP:        full(View, Edit),
		AreaBroadcasts: full(View),
		AreaContent:    full(View),
		AreaAnalytics:  full(View),
	}},
	{Key: "community_sales", Name: "社群销售", Description: "跟进自己的客户，手机号脱敏", Scope: DataOwn, Matrix: Matrix{
		AreaCustomers: full(View, Edit),
		AreaEngage:    full(View),
		AreaTags:      full(View),
		AreaSegments:  full(View),
		AreaContent:   full(View),
		AreaAnalytics: full(View),
	}},
}

// Template returns the template with this key, or nil.
func Template(key string) *RoleDef {
	for i := range Templates {
		if string(Templates[i].Key) == key {
			d := Templates[i]
			d.Matrix = cloneMatrix(d.Matrix)
			return &d
		}
	}
	return nil
}

func cloneMatrix(m Matrix) Matrix {
	out := Matrix{}
	for a, xs := range m {
		out[a] = slices.Clone(xs)
	}
	return out
}
