package web

import (
	"net/http"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/store"
)

// routesIngest mounts the Segment-compatible ingestion API (internal/ingest): POST /v1/identify,
// /v1/track, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch and their short forms,
// authenticated by write key rather than by session, plus CORS preflight for browsers.
func (s *Server) routesIngest(mux *http.ServeMux) {
	h := ingest.NewHandler(s.Store, ingest.Options{
		Log:   s.Log,
		Limit: s.allowIngest, // requests per write key (Security.IngestRate)
		Count: func(typ, outcome string) {
			s.metrics.Ingested.WithLabelValues(typ, outcome).Inc()
		},
		// Event rules tag customers, and event-triggered SOPs plan their touches, in the
		// transaction that stores their events; a failing rule or SOP is logged and the events
		// are stored anyway (tagrule.Runner.AfterStore, sop.Service.AfterStore).
		// Event rules of member points credit points in the same transaction
		// (store.PointsAfterStore; the points run catches up whatever it missed).
		AfterStore: afterStoreAll(s.TagRules.AfterStore(s.Log), s.SOPs.AfterStore(s.Log), s.Store.PointsAfterStore(s.Log)),
	})
	for _, p := range ingest.Paths {
		mux.Handle("POST "+p, h)
		mux.Handle("OPTIONS "+p, h)
	}
}

// afterStoreAll runs ingestion hooks in order in the same transaction; the first error
// stops them and fails the transaction.
func afterStoreAll(hooks ...func(tx *store.Tx, evts []*event.Event) error) func(tx *store.Tx, evts []*event.Event) error {
	return func(tx *store.Tx, evts []*event.Event) error {
		for _, h := range hooks {
			if err := h(tx, evts); err != nil {
				return err
			}
		}
		return nil
	}
}
