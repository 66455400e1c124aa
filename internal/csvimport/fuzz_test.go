package csvimport

import (
	"bytes"
	"testing"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// FuzzImportCustomers feeds arbitrary bytes to the customer import: it must never panic,
// never fail the database, and account for every row it read. Seeds live in
// testdata/fuzz/FuzzImportCustomers.
func FuzzImportCustomers(f *testing.F) {
	f.Add([]byte(chineseCustomers))
	f.Add([]byte(invalidCSV))
	s := storetest.Open(f, store.SQLite)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Customers(ctx, s, bytes.NewReader(data), Options{BatchSize: 7, Source: "fuzz"})
		if err != nil {
			if rep.Written && rep.Rows == 0 {
				t.Fatalf("error %v after writing nothing but marked written", err)
			}
			return // a file-level problem (encoding, header), reported as an error
		}
		if got := rep.Created + rep.Updated + rep.Unchanged + rep.Invalid; got != rep.Rows {
			t.Fatalf("rows %d but created+updated+unchanged+invalid = %d: %+v", rep.Rows, got, rep)
		}
		for _, e := range rep.Errors {
			if e.Line < 2 || e.Reason == "" {
				t.Fatalf("row error %+v: lines start at 2, after the header", e)
			}
		}
	})
}
