package content

import (
	"fmt"

	"github.com/siyu-scrm/siyu/internal/store"
)

// CheckPersona checks a persona (人设) as operators write it: a name customers see (健康管理专家),
// a title, an introduction and an avatar URL; its staff are checked by the store.
func CheckPersona(p *store.Persona) error {
	if err := checkLen("name", p.Name, 30, true); err != nil {
		return err
	}
	if err := checkLen("title", p.Title, 60, false); err != nil {
		return err
	}
	if err := checkLen("intro", p.Intro, 500, false); err != nil {
		return err
	}
	if err := checkURL("avatar_url", p.AvatarURL, false); err != nil {
		return err
	}
	if len(p.StaffIDs) > 500 {
		return fieldErr("staff_ids", "at most 500")
	}
	for i, id := range p.StaffIDs {
		if id <= 0 {
			return fieldErr(fmt.Sprintf("staff_ids[%d]", i), "want a staff id")
		}
	}
	return nil
}
