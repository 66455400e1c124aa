package ownership

import (
	"errors"
	"fmt"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
)

func TestDistribute(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []Target
		owned   map[int64]int64
		n       int
		want    string
		err     string
	}{
		{"even", []Target{{StaffID: 1}, {StaffID: 2}, {StaffID: 3}}, nil, 7, "[1 2 3 1 2 3 1]", ""},
		{"weighted", []Target{{StaffID: 1, Weight: 2}, {StaffID: 2}}, nil, 6, "[1 2 1 1 2 1]", ""},
		{"cap counts what is owned", []Target{{StaffID: 1, Cap: 3}, {StaffID: 2}}, map[int64]int64{1: 2}, 4, "[1 2 2 2]", ""},
		{"all capped, enough room", []Target{{StaffID: 1, Cap: 1}, {StaffID: 2, Cap: 2}}, nil, 3, "[1 2 2]", ""},
		{"all capped, too little room", []Target{{StaffID: 1, Cap: 1}, {StaffID: 2, Cap: 1}}, nil, 3, "", "rule"},
		{"over cap already", []Target{{StaffID: 1, Cap: 1}, {StaffID: 2}}, map[int64]int64{1: 5}, 2, "[2 2]", ""},
		{"nothing to place", []Target{{StaffID: 1}}, nil, 0, "[]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Distribute("rule", tc.targets, tc.owned, tc.n)
			if tc.err != "" {
				var fe *customer.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.err {
					t.Fatalf("got %v, want a field error on %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestCheckTargets(t *testing.T) {
	for _, tc := range []struct {
		targets []Target
		field   string
	}{
		{nil, "successors"},
		{[]Target{{StaffID: 0}}, "successors[0].staff_id"},
		{[]Target{{StaffID: 1}, {StaffID: 1}}, "successors[1].staff_id"},
		{[]Target{{StaffID: 1, Weight: -1}}, "successors[0].weight"},
		{[]Target{{StaffID: 1, Cap: -2}}, "successors[0].cap"},
	} {
		err := checkTargets("successors", tc.targets)
		var fe *customer.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%v: got %v, want a field error on %s", tc.targets, err, tc.field)
		}
	}
}

func BenchmarkDistribute(b *testing.B) {
	targets := make([]Target, 50)
	for i := range targets {
		targets[i] = Target{StaffID: int64(i + 1), Weight: 1 + i%3, Cap: 5000}
	}
	for b.Loop() {
		if _, err := Distribute("rule", targets, nil, 100000); err != nil {
			b.Fatal(err)
		}
	}
}
