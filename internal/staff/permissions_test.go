package staff

import (
	"errors"
	"slices"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
)

func TestMatrixNormalize(t *testing.T) {
	m, err := Matrix{AreaCustomers: {Reveal, Edit, Edit}, AreaTags: {}, AreaAnalytics: {Export}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"customers.view", "customers.edit", "customers.reveal", "analytics.view", "analytics.export"}
	if got := m.Permissions(); !slices.Equal(got, want) {
		t.Errorf("normalized %v, want %v", got, want)
	}
	if _, ok := m[AreaTags]; ok {
		t.Error("an area with no actions stayed")
	}
	for _, bad := range []Matrix{{"wecom": {View}}, {AreaTags: {Export}}, {AreaContent: {Reveal}}} {
		var fe *customer.FieldError
		if _, err := bad.Normalize(); !errors.As(err, &fe) {
			t.Errorf("%v: %v, want a FieldError", bad, err)
		}
	}
}

func TestPresetsAndTemplatesAreValid(t *testing.T) {
	for _, d := range append(slices.Clone(Presets), Templates...) {
		m, err := d.Matrix.Normalize()
		if err != nil {
			t.Errorf("%s: %v", d.Key, err)
		}
		if !slices.Equal(m.Permissions(), d.Matrix.Permissions()) {
			t.Errorf("%s is not in canonical form: %v vs %v", d.Key, d.Matrix.Permissions(), m.Permissions())
		}
		if !d.Scope.Valid() {
			t.Errorf("%s: scope %q", d.Key, d.Scope)
		}
	}
	if Preset(Sales).Allows(Perm(AreaCustomers, Reveal)) {
		t.Error("sales may reveal contact details")
	}
	if !Preset(Admin).Allows(Perm(AreaAudit, Export)) || Preset("nobody") != nil {
		t.Error("admin is not everything, or an unknown role has a preset")
	}
	// Template returns a copy: changing it leaves the template alone.
	tpl := Template("growth_ops")
	tpl.Matrix[AreaSettings] = []Action{Edit}
	if Template("growth_ops").Matrix.Allows(Perm(AreaSettings, Edit)) {
		t.Error("a template was changed through a copy")
	}
}

func TestCustomerScope(t *testing.T) {
	all, none, some := CustomerScope{}, OwnersScope(), OwnersScope(7, 3, 7)
	for _, c := range []struct {
		s     CustomerScope
		owner int64
		want  bool
	}{
		{all, 0, true}, {all, 9, true},
		{none, 0, false}, {none, 3, false},
		{some, 3, true}, {some, 7, true}, {some, 5, false}, {some, 0, false},
	} {
		if got := c.s.Allows(c.owner); got != c.want {
			t.Errorf("%+v allows %d: %v, want %v", c.s, c.owner, got, c.want)
		}
	}
	if !slices.Equal(some.Owners, []int64{3, 7}) {
		t.Errorf("owners %v, want sorted and unique", some.Owners)
	}
	if OwnerScope(0).Limited || !OwnerScope(-2).Limited || len(OwnerScope(-2).Owners) != 0 || !slices.Equal(OwnerScope(4).Owners, []int64{4}) {
		t.Error("OwnerScope does not follow the single-owner convention")
	}
}

func TestDepartmentTree(t *testing.T) {
	list := []*Department{
		{ID: 1, Name: "销售部", Sort: 2}, {ID: 2, Name: "运营部", Sort: 1}, {ID: 3, ParentID: 1, Name: "华东组"},
		{ID: 4, ParentID: 99, Name: "孤儿"},                                  // a missing parent: shown at the top
		{ID: 5, ParentID: 6, Name: "环A"}, {ID: 6, ParentID: 5, Name: "环B"}, // a cycle (never stored) must not hang
	}
	var paths []string
	for _, n := range FlattenTree(DepartmentTree(list)) {
		paths = append(paths, n.Path)
	}
	want := []string{"孤儿", "运营部", "销售部", "销售部 / 华东组"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
}
