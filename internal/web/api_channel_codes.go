package web

import (
	"context"
	"net/http"
	"os"
	"strconv"

	"github.com/siyu-scrm/siyu/internal/channel"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/wecom"
)

// Channel codes (渠道活码) over HTTP (internal/channel): list with paging, create, read with
// its latest adds, update, delete, stats per day.

// channelOperators run channel codes.
var channelOperators = []staff.Role{staff.Operator}

// channels is the channel-code service; with WeCom's API configured, codes become WeCom
// contact ways (the configuration is read at each call, so settings saved in the console
// apply at once).
func (s *Server) channels() *channel.Service {
	svc := channel.NewService(s.Store, s.Log)
	svc.WeCom = func(ctx context.Context) (channel.WeCom, error) {
		cfg, err := wecom.LoadConfig(ctx, s.Store, os.Getenv)
		if err != nil || !cfg.APIReady() {
			return nil, err
		}
		return wecom.NewClient(cfg, s.Store)
	}
	return svc
}

func (s *Server) apiListChannelCodes(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", 50, 1, 200)
	if !ok {
		return
	}
	offset, ok := queryInt(w, r, "offset", 0, 0, 1<<30)
	if !ok {
		return
	}
	page, err := s.Store.ListChannelCodes(r.Context(), r.URL.Query().Get("q"), offset, limit)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) apiGetChannelCode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, err := s.channels().Get(r.Context(), id)
	if err == nil && c.Status == store.ChannelCodeDeleted {
		err = store.ErrNotFound
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	adds, err := s.Store.ChannelAdds(r.Context(), id, 50)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": c, "recent_adds": adds})
}

func (s *Server) saveChannelCode(w http.ResponseWriter, r *http.Request, id int64) {
	var in channel.Input
	if !decodeJSON(w, r, apiBodyLimit, &in) {
		return
	}
	c, err := s.channels().Save(r.Context(), id, &in, principalFrom(r).StaffID())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/channel-codes/"+strconv.FormatInt(c.ID, 10))
	}
	writeJSON(w, status, c)
}

func (s *Server) apiCreateChannelCode(w http.ResponseWriter, r *http.Request) {
	s.saveChannelCode(w, r, 0)
}

func (s *Server) apiUpdateChannelCode(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r); ok {
		s.saveChannelCode(w, r, id)
	}
}

func (s *Server) apiDeleteChannelCode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.channels().Delete(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiChannelCodeStats(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	days, ok := queryInt(w, r, "days", 30, 1, 366)
	if !ok {
		return
	}
	st, err := s.channels().Stats(r.Context(), id, days)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
