package store

import (
	"strings"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// ownersIn is the SQL condition (with its leading AND) that keeps the rows whose owner column
// col is in the data scope: nothing for every customer, a condition nothing meets for a scope
// with no owners, and owner IN (…) otherwise. A department's staff are few enough for a list
// of parameters.
func ownersIn(col string, sc staff.CustomerScope) (string, []any) {
	if sc.All() {
		return "", nil
	}
	if len(sc.Owners) == 0 {
		return ` AND 1 = 0`, nil
	}
	args := make([]any, len(sc.Owners))
	for i, id := range sc.Owners {
		args[i] = id
	}
	return ` AND ` + col + ` IN (?` + strings.Repeat(`, ?`, len(args)-1) + `)`, args
}

// scopedCustomers is ownersIn for a query over another table whose customer id column is col.
func scopedCustomers(col string, sc staff.CustomerScope) (string, []any) {
	if sc.All() {
		return "", nil
	}
	cond, args := ownersIn("owner_id", sc)
	return ` AND ` + col + ` IN (SELECT id FROM customers WHERE 1 = 1` + cond + `)`, args
}
