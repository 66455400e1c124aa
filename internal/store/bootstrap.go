package store

import (
	"context"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// EnsureAdmin creates the first admin (login "admin") when there is no staff account at all.
// It uses password when given, else a random one, and returns the password it set; created is
// false (and the password empty) when staff already exist, so a password is printed only once.
func (s *Store) EnsureAdmin(ctx context.Context, password string) (created bool, pw string, err error) {
	n, err := s.CountStaff(ctx)
	if err != nil || n > 0 {
		return false, "", err
	}
	if password == "" {
		password = staff.NewSecret("")[:20]
	}
	m := &staff.Staff{Login: "admin", Name: "管理员", Role: staff.Admin}
	if err := s.CreateStaff(ctx, m, password); err != nil {
		if err == ErrConflict { // another instance won the race
			return false, "", nil
		}
		return false, "", err
	}
	return true, password, nil
}
