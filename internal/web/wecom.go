package web

import (
	"context"
	"net/http"
	"os"

	"github.com/siyu-scrm/siyu/internal/wecom"
)

// routesWeCom mounts WeCom's callback (GET: URL verification, POST: events). It is public,
// as WeCom cannot sign in, but every request is checked by its signature, timestamp and
// nonce before anything is written; see internal/wecom.Callback. Settings changed in the
// console take effect within ten seconds.
func (s *Server) routesWeCom(mux *http.ServeMux) {
	h := &wecom.Callback{Store: s.Store, Log: s.Log, Config: &wecom.ConfigSource{
		Load: func(ctx context.Context) (wecom.Config, error) { return wecom.LoadConfig(ctx, s.Store, os.Getenv) },
	}}
	mux.Handle("GET /wecom/callback", h)
	mux.Handle("POST /wecom/callback", h)
}
