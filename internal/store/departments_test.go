package store_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// errField is the field a FieldError names, or "" for any other error.
func errField(err error) string {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestDepartmentTree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		mk := func(parent int64, name string) *staff.Department {
			t.Helper()
			d := &staff.Department{ParentID: parent, Name: name}
			if err := s.CreateDepartment(ctx, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		sales := mk(0, "销售部")
		east := mk(sales.ID, "华东组")
		shanghai := mk(east.ID, "上海")
		north := mk(sales.ID, "华北组")
		ops := mk(0, "运营部")

		// Bad input writes nothing and names the field.
		for _, c := range []struct {
			d     staff.Department
			field string
		}{
			{staff.Department{Name: "  "}, "name"},
			{staff.Department{Name: "华东组", ParentID: sales.ID}, "name"}, // a sibling's name
			{staff.Department{Name: "x", ParentID: 9999}, "parent_id"},
			{staff.Department{Name: "x", Sort: 2_000_000}, "sort"},
		} {
			if err := s.CreateDepartment(ctx, &c.d); errField(err) != c.field {
				t.Errorf("create %+v: %v, want a FieldError on %s", c.d, err, c.field)
			}
		}
		// The same name under another parent is fine.
		mk(ops.ID, "华东组")

		// No cycles: not under itself, not under its own descendant.
		for _, parent := range []int64{sales.ID, east.ID, shanghai.ID} {
			d := *sales
			d.ParentID = parent
			if err := s.UpdateDepartment(ctx, &d); errField(err) != "parent_id" {
				t.Errorf("move 销售部 under %d: %v, want a FieldError on parent_id", parent, err)
			}
		}
		// A legal move, and a rename that staff see.
		m := &staff.Staff{Login: "lei", Name: "李雷", Role: staff.Sales, DepartmentID: shanghai.ID}
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		if m.Department != "上海" {
			t.Errorf("staff department name %q, want 上海", m.Department)
		}
		moved := *shanghai
		moved.ParentID, moved.Name = north.ID, "上海二组"
		if err := s.UpdateDepartment(ctx, &moved); err != nil {
			t.Fatal(err)
		}
		got, err := s.StaffByID(ctx, m.ID)
		if err != nil || got.Department != "上海二组" || got.DepartmentID != shanghai.ID {
			t.Errorf("after rename: %+v, %v", got, err)
		}

		// The subtree's staff: 销售部 reaches 李雷 two levels down, 华东组 no longer does.
		han := &staff.Staff{Login: "han", Name: "韩梅梅", Role: staff.Sales, DepartmentID: east.ID}
		if err := s.CreateStaff(ctx, han, ""); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			dept int64
			want []int64
		}{{sales.ID, []int64{m.ID, han.ID}}, {east.ID, []int64{han.ID}}, {north.ID, []int64{m.ID}}, {ops.ID, nil}} {
			ids, err := s.DepartmentStaffIDs(ctx, c.dept)
			if err != nil || !slices.Equal(ids, c.want) && len(ids)+len(c.want) > 0 {
				t.Errorf("staff of %d: %v, %v, want %v", c.dept, ids, err, c.want)
			}
		}

		// The tree arranges what the list returns.
		list, err := s.ListDepartments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		flat := staff.FlattenTree(staff.DepartmentTree(list))
		var paths []string
		for _, n := range flat {
			paths = append(paths, n.Path)
		}
		// Siblings by sort, then name (code point order: 运 before 销, 东 before 北).
		want := []string{"运营部", "运营部 / 华东组", "销售部", "销售部 / 华东组", "销售部 / 华北组", "销售部 / 华北组 / 上海二组"}
		if !slices.Equal(paths, want) {
			t.Errorf("tree %q, want %q", paths, want)
		}

		// Delete only when empty: children first, then staff.
		if err := s.DeleteDepartment(ctx, sales.ID); errField(err) != "children" {
			t.Errorf("delete 销售部: %v, want a FieldError on children", err)
		}
		if err := s.DeleteDepartment(ctx, east.ID); errField(err) != "staff" {
			t.Errorf("delete 华东组: %v, want a FieldError on staff", err)
		}
		han.DepartmentID, han.Department = 0, ""
		if err := s.UpdateStaff(ctx, han); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDepartment(ctx, east.ID); err != nil {
			t.Errorf("delete the emptied 华东组: %v", err)
		}
		if err := s.DeleteDepartment(ctx, east.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete it again: %v, want ErrNotFound", err)
		}

		// The older free-text field finds a department by name or makes a top-level one.
		legacy := &staff.Staff{Login: "wang", Name: "王", Role: staff.Operator, Department: " 运营部 "}
		if err := s.CreateStaff(ctx, legacy, ""); err != nil || legacy.DepartmentID != ops.ID {
			t.Errorf("department by name: %+v, %v", legacy, err)
		}
		fresh := &staff.Staff{Login: "zhao", Name: "赵", Role: staff.Operator, Department: "客服部"}
		if err := s.CreateStaff(ctx, fresh, ""); err != nil || fresh.DepartmentID == 0 {
			t.Fatalf("new department by name: %+v, %v", fresh, err)
		}
		if d, err := s.DepartmentByID(ctx, fresh.DepartmentID); err != nil || d.Name != "客服部" || d.ParentID != 0 || d.Staff != 1 {
			t.Errorf("made department: %+v, %v", d, err)
		}
		bad := &staff.Staff{Login: "qian", Name: "钱", Role: staff.Operator, DepartmentID: 9999}
		if err := s.CreateStaff(ctx, bad, ""); errField(err) != "department_id" {
			t.Errorf("unknown department: %v, want a FieldError on department_id", err)
		}
		if _, err := s.StaffByLogin(ctx, "qian"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused staff member was written: %v", err)
		}
	})
}

func TestDepartmentDepthLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		var parent int64
		var first int64
		for i := range staff.MaxDepartmentDepth {
			d := &staff.Department{ParentID: parent, Name: "d"}
			if err := s.CreateDepartment(ctx, d); err != nil {
				t.Fatalf("level %d: %v", i, err)
			}
			parent = d.ID
			if first == 0 {
				first = d.ID
			}
		}
		if err := s.CreateDepartment(ctx, &staff.Department{ParentID: parent, Name: "too deep"}); errField(err) != "parent_id" {
			t.Errorf("level %d: %v, want a FieldError on parent_id", staff.MaxDepartmentDepth+1, err)
		}
		// Moving a two-level tree under the deepest leaf would exceed the limit as well.
		top := &staff.Department{Name: "top"}
		if err := s.CreateDepartment(ctx, top); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateDepartment(ctx, &staff.Department{ParentID: top.ID, Name: "child"}); err != nil {
			t.Fatal(err)
		}
		top.ParentID = parent - 1
		if err := s.UpdateDepartment(ctx, top); errField(err) != "parent_id" {
			t.Errorf("move a subtree too deep: %v, want a FieldError on parent_id", err)
		}
	})
}

func TestCustomRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		// From a template: its matrix and scope are copied.
		growth := &staff.RoleDef{Template: "growth_ops"}
		if err := s.CreateRole(ctx, growth); err != nil {
			t.Fatal(err)
		}
		if growth.Name != "增长运营" || growth.Key != staff.Role("role_"+itoa(int(growth.ID))) || growth.Scope != staff.DataAll || !growth.Matrix.Allows(staff.Perm(staff.AreaSegments, staff.Export)) {
			t.Errorf("from template: %+v", growth)
		}
		// Edit implies view; the stored matrix reads back in canonical order.
		lead := &staff.RoleDef{Key: "sales_lead", Name: "销售主管", Scope: staff.DataDepartment,
			Matrix: staff.Matrix{staff.AreaCustomers: {staff.Reveal, staff.Edit}, staff.AreaAnalytics: {staff.Export}}}
		if err := s.CreateRole(ctx, lead); err != nil {
			t.Fatal(err)
		}
		got, err := s.RoleByKey(ctx, "sales_lead")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"customers.view", "customers.edit", "customers.reveal", "analytics.view", "analytics.export"}; !slices.Equal(got.Matrix.Permissions(), want) || got.Scope != staff.DataDepartment {
			t.Errorf("read back %v %s, want %v department", got.Matrix.Permissions(), got.Scope, want)
		}

		for _, c := range []struct {
			d     staff.RoleDef
			field string
		}{
			{staff.RoleDef{Name: "", Scope: staff.DataAll}, "name"},
			{staff.RoleDef{Name: "销售主管", Scope: staff.DataAll}, "name"}, // taken
			{staff.RoleDef{Name: "管理员", Scope: staff.DataAll}, "name"},  // a built-in's name
			{staff.RoleDef{Name: "x", Scope: "team"}, "data_scope"},
			{staff.RoleDef{Name: "x", Scope: staff.DataAll, Matrix: staff.Matrix{"wecom": {staff.View}}}, "matrix.wecom"},
			{staff.RoleDef{Name: "x", Scope: staff.DataAll, Matrix: staff.Matrix{staff.AreaTags: {staff.Export}}}, "matrix.tags"},
			{staff.RoleDef{Name: "x", Key: "admin", Scope: staff.DataAll}, "key"},
			{staff.RoleDef{Name: "x", Key: "Bad Key", Scope: staff.DataAll}, "key"},
			{staff.RoleDef{Name: "x", Key: "sales_lead", Scope: staff.DataAll}, "key"},
			{staff.RoleDef{Template: "ceo"}, "template"},
		} {
			if err := s.CreateRole(ctx, &c.d); errField(err) != c.field {
				t.Errorf("create %+v: %v, want a FieldError on %s", c.d, err, c.field)
			}
		}

		// Staff and keys take a custom role by key; an unknown key is refused.
		m := &staff.Staff{Login: "lead", Name: "主管", Role: "sales_lead"}
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateStaff(ctx, &staff.Staff{Login: "x", Name: "x", Role: "nobody"}, ""); errField(err) != "role" {
			t.Errorf("unknown role: %v, want a FieldError on role", err)
		}
		if _, _, err := s.CreateKey(ctx, staff.APIKey, "k", "sales_lead", m.ID); err != nil {
			t.Errorf("key with a custom role: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, staff.APIKey, "k", "nobody", m.ID); errField(err) != "role" {
			t.Errorf("key with an unknown role: %v", err)
		}

		// A role in use cannot be deleted; list shows members.
		if err := s.DeleteRole(ctx, lead.ID); errField(err) != "members" {
			t.Errorf("delete a role in use: %v, want a FieldError on members", err)
		}
		roles, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		members := map[staff.Role]int{}
		for _, r := range roles {
			members[r.Key] = r.Members
		}
		if len(roles) != len(staff.Presets)+2 || members["sales_lead"] != 2 || members[growth.Key] != 0 {
			t.Errorf("roles %v", members)
		}

		// Update changes the matrix; the key stays.
		lead.Matrix = staff.Matrix{staff.AreaCustomers: {staff.View}}
		lead.Key = "ignored"
		if err := s.UpdateRole(ctx, lead); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RoleByID(ctx, lead.ID); err != nil || got.Key != "sales_lead" || got.Matrix.Allows(staff.Perm(staff.AreaCustomers, staff.Reveal)) {
			t.Errorf("after update: %+v, %v", got, err)
		}
		if err := s.DeleteRole(ctx, growth.ID); err != nil {
			t.Errorf("delete an unused role: %v", err)
		}
		if _, err := s.RoleByKey(ctx, growth.Key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted role still resolves: %v", err)
		}
		if d, err := s.RoleByKey(ctx, staff.Sales); err != nil || !d.BuiltIn || d.Scope != staff.DataOwn {
			t.Errorf("built-in sales: %+v, %v", d, err)
		}
	})
}
