package web

import (
	"errors"
	"net/http"

	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The staff task inbox over HTTP: staff-executed touches of SOPs. A sales role sees and acts
// on its own tasks only; operators and admins see everyone's (or one staff member's with
// ?staff=ID).

func (s *Server) apiListTasks(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = "today"
	}
	switch state {
	case "today", "overdue", "upcoming", "done":
	default:
		writeError(w, http.StatusBadRequest, "invalid_parameter", "state must be today, overdue, upcoming or done", "state")
		return
	}
	p := principalFrom(r)
	f := store.TouchFilter{Inbox: state, Now: s.Store.Now(), Location: s.SOPs.Policy().Location, Limit: 500}
	if !p.Scope().All() { // a role limited to some customers works its own inbox
		f.ExecutorID = p.ScopeOwnerID()
	} else {
		n, ok := queryInt(w, r, "staff", 0, 0, 1<<31-1)
		if !ok {
			return
		}
		f.ExecutorID = int64(n)
	}
	tasks, err := s.Store.Touches(r.Context(), f)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// A task made from a content-library item carries its attachments (images, links,
	// mini-program cards) for the staff member to send with the text.
	ids := make([]int64, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	atts, err := s.Store.TouchesAttachments(r.Context(), ids)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	type task struct {
		*store.Touch
		Attachments []store.Attachment `json:"attachments,omitempty"`
	}
	out := make([]task, len(tasks))
	for i, t := range tasks {
		out[i] = task{Touch: t, Attachments: atts[t.ID]}
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": state, "tasks": out})
}

func (s *Server) finishTask(w http.ResponseWriter, r *http.Request, skipped bool) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, apiBodyLimit, &body) {
		return
	}
	p := principalFrom(r)
	var actor int64
	if !p.Scope().All() {
		actor = p.ScopeOwnerID()
	}
	t, err := s.SOPs.FinishTask(r.Context(), id, actor, skipped, body.Note)
	if errors.Is(err, sop.ErrNotYours) {
		writeError(w, http.StatusNotFound, "not_found", "not found", "") // another's task is not there for a sales role
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) apiTaskDone(w http.ResponseWriter, r *http.Request) { s.finishTask(w, r, false) }
func (s *Server) apiTaskSkip(w http.ResponseWriter, r *http.Request) { s.finishTask(w, r, true) }
