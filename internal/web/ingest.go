package web

import (
	"net/http"

	"github.com/siyu-scrm/siyu/internal/ingest"
)

// routesIngest mounts the Segment-compatible ingestion API (internal/ingest): POST /v1/identify,
// /v1/track, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch and their short forms,
// authenticated by write key rather than by session, plus CORS preflight for browsers.
func (s *Server) routesIngest(mux *http.ServeMux) {
	h := ingest.NewHandler(s.Store, ingest.Options{
		Log: s.Log,
		Count: func(typ, outcome string) {
			s.metrics.Ingested.WithLabelValues(typ, outcome).Inc()
		},
		// Event rules tag customers in the transaction that stores their events; a failing
		// rule is logged and the events are stored anyway (tagrule.Runner.AfterStore).
		AfterStore: s.TagRules.AfterStore(s.Log),
	})
	for _, p := range ingest.Paths {
		mux.Handle("POST "+p, h)
		mux.Handle("OPTIONS "+p, h)
	}
}
