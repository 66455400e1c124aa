package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// BenchmarkScopedCustomerList measures what a data scope costs a customer list page and its
// count: 50,000 customers owned by 200 staff in 10 departments of 20, listed as every customer,
// as one department (the owner list resolved from the tree each time, as a request does) and
// as one person.
func BenchmarkScopedCustomerList(b *testing.B) {
	for _, eng := range []store.Engine{store.SQLite, store.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			if eng == store.Postgres && storetest.PostgresURL() == "" {
				b.Skip("no PostgreSQL")
			}
			s := storetest.Open(b, eng)
			var depts []int64
			for i := range 10 {
				d := &staff.Department{Name: fmt.Sprintf("销售%d组", i)}
				if err := s.CreateDepartment(ctx, d); err != nil {
					b.Fatal(err)
				}
				depts = append(depts, d.ID)
			}
			var members []*staff.Staff
			for i := range 200 {
				members = append(members, &staff.Staff{Login: fmt.Sprint("s", i), Name: fmt.Sprint("销售", i), Role: staff.Sales, DepartmentID: depts[i%10]})
			}
			const n = 50_000
			cs := make([]*customer.Customer, n)
			at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			err := s.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.BulkInsertStaff(members, ""); err != nil {
					return err
				}
				for i := range cs {
					cs[i] = &customer.Customer{ID: int64(i + 1), Name: fmt.Sprint("客户", i), OwnerID: members[i%200].ID, CreatedAt: at.Add(time.Duration(i) * time.Minute)}
				}
				return tx.BulkInsertCustomers(cs)
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.DB().ExecContext(ctx, "ANALYZE"); err != nil { // as autovacuum would have
				b.Fatal(err)
			}
			for _, c := range []struct {
				name  string
				scope func() staff.CustomerScope
			}{
				{"all", func() staff.CustomerScope { return staff.CustomerScope{} }},
				{"department", func() staff.CustomerScope {
					ids, err := s.DepartmentStaffIDs(ctx, depts[3])
					if err != nil {
						b.Fatal(err)
					}
					return staff.OwnersScope(ids...)
				}},
				{"own", func() staff.CustomerScope { return staff.OwnersScope(members[7].ID) }},
			} {
				b.Run(c.name, func(b *testing.B) {
					var total int64
					for b.Loop() {
						f := store.CustomerFilter{Scope: c.scope(), Limit: 50, Sort: "id", Desc: true}
						page, err := s.ListCustomers(ctx, f)
						if err != nil || len(page.Customers) != 50 {
							b.Fatalf("%d customers, %v", len(page.Customers), err)
						}
						if total, err = s.CountCustomers(ctx, f); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(total), "customers")
				})
			}
		})
	}
}
