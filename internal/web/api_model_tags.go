package web

import (
	"net/http"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Model tags: GET and PUT /api/v1/models/{model}/tags turn a model's "write as tags" on or off
// (store.SetModelTags) and show its group with how many customers hold each tag.

// apiModelTagsRequest is the body of PUT /api/v1/models/{model}/tags.
type apiModelTagsRequest struct {
	Enabled   *bool  `json:"enabled"`
	GroupName string `json:"group_name"` // default: the model's group name (RFM 分类, 生命周期 …)
}

// apiModelTagsResult answers a PUT: the option and its tags, and what the change did.
type apiModelTagsResult struct {
	*store.ModelTagState
	Added   int `json:"added"`
	Removed int `json:"removed"`
}

func (s *Server) apiGetModelTags(w http.ResponseWriter, r *http.Request) {
	st, err := s.Store.ModelTags(r.Context(), r.PathValue("model"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) apiPutModelTags(w http.ResponseWriter, r *http.Request) {
	m := r.PathValue("model")
	if !model.ValidTaggedModel(m) {
		writeError(w, http.StatusNotFound, "not_found", "no model "+m+" (want rfm, lifecycle, journey, aipl or tier)", "")
		return
	}
	var req apiModelTagsRequest
	if !decodeJSON(w, r, apiBodyLimit, &req) {
		return
	}
	if req.Enabled == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "enabled is required: true writes the model's output as tags, false removes them", "enabled")
		return
	}
	changes, err := s.Store.SetModelTags(r.Context(), m, model.TagConfig{Enabled: *req.Enabled, GroupName: req.GroupName})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	st, err := s.Store.ModelTags(r.Context(), m)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	added, removed := tag.Counts(changes)
	s.Log.Info("model tags set", "model", m, "enabled", *req.Enabled, "group", st.GroupName, "added", added, "removed", removed)
	writeJSON(w, http.StatusOK, apiModelTagsResult{ModelTagState: st, Added: added, Removed: removed})
}
