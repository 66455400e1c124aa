package staff

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Department is one node of the organisation tree. Each staff member belongs to at most one;
// a role with the department data scope sees the customers of everyone in that department and
// the departments below it.
type Department struct {
	ID       int64  `json:"id"`
	ParentID int64  `json:"parent_id"` // 0 for a top-level department
	Name     string `json:"name"`
	Sort     int    `json:"sort"` // order among siblings, smaller first
	// Staff counts the staff members directly in this department (filled by lists).
	Staff     int       `json:"staff"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxDepartmentDepth bounds the tree: deeper trees are a data-entry mistake, and the bound
// keeps every walk of the tree short.
const MaxDepartmentDepth = 10

// Clean trims the name and checks the fields that need no other department to judge.
func (d *Department) Clean() error {
	d.Name = strings.TrimSpace(d.Name)
	switch {
	case d.Name == "" || utf8.RuneCountInString(d.Name) > 100 || strings.ContainsAny(d.Name, "\r\n\t"):
		return &customer.FieldError{Field: "name", Reason: "required, at most 100 characters on one line"}
	case d.ParentID < 0:
		return &customer.FieldError{Field: "parent_id", Reason: "must be a department id or 0"}
	case d.Sort < -1_000_000 || d.Sort > 1_000_000:
		return &customer.FieldError{Field: "sort", Reason: "between -1000000 and 1000000"}
	}
	return nil
}

// DepartmentNode is a department with its children, for the tree view.
type DepartmentNode struct {
	Department
	Path     string            `json:"path"` // names from the top, joined by " / "
	Depth    int               `json:"depth"`
	Children []*DepartmentNode `json:"children"`
}

// DepartmentTree arranges a flat list into trees, siblings by sort then name then id. A
// department whose parent is missing from the list is shown at the top.
func DepartmentTree(list []*Department) []*DepartmentNode {
	nodes := make(map[int64]*DepartmentNode, len(list))
	for _, d := range list {
		nodes[d.ID] = &DepartmentNode{Department: *d, Children: []*DepartmentNode{}}
	}
	var roots []*DepartmentNode
	for _, d := range list {
		n := nodes[d.ID]
		if p := nodes[d.ParentID]; p != nil && d.ParentID != d.ID {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	var walk func(ns []*DepartmentNode, path string, depth int)
	walk = func(ns []*DepartmentNode, path string, depth int) {
		slices.SortFunc(ns, func(a, b *DepartmentNode) int {
			return cmp.Or(cmp.Compare(a.Sort, b.Sort), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
		})
		for _, n := range ns {
			n.Path, n.Depth = n.Name, depth
			if path != "" {
				n.Path = path + " / " + n.Name
			}
			if depth < MaxDepartmentDepth*2 { // a cycle cannot be stored; bound the walk anyway
				walk(n.Children, n.Path, depth+1)
			}
		}
	}
	walk(roots, "", 0)
	return roots
}

// FlattenTree lists the nodes depth first, parents before children: the order of an indented
// table or a <select>.
func FlattenTree(roots []*DepartmentNode) []*DepartmentNode {
	var out []*DepartmentNode
	var walk func([]*DepartmentNode)
	walk = func(ns []*DepartmentNode) {
		for _, n := range ns {
			out = append(out, n)
			walk(n.Children)
		}
	}
	walk(roots)
	return out
}
