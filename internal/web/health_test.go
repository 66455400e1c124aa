package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// /readyz waits for the audience engine and the database; /healthz only says the process is
// up; /metrics carries the queue's depth and the engine's state.
func TestReadinessAndOperationalMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		eng := audience.New(st, audience.Options{})
		srv := &Server{Store: st, Audience: eng, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		h := srv.Handler()

		if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"audience":"loading"`) {
			t.Fatalf("readyz before the engine loaded: %d %s", code, body)
		}
		if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
			t.Fatalf("healthz: %d", code)
		}
		if err := eng.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if code, body := get(t, h, "/readyz"); code != http.StatusOK || !strings.Contains(body, `"migrations":"ok"`) {
			t.Fatalf("readyz once loaded: %d %s", code, body)
		}

		err := st.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.EnqueueJob(&store.Job{Kind: "probe", Key: "probe:1", RunAt: st.Now().Add(-time.Minute)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, body := get(t, h, "/metrics")
		for _, want := range []string{"siyu_jobs_due 1", `siyu_jobs{kind="probe",state="pending"} 1`, "siyu_audience_ready 1"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}

		// A server whose database has gone away is alive but not ready.
		gone, err := store.Open(ctx, storetest.DSN(t, st.Engine()))
		if err != nil {
			t.Fatal(err)
		}
		gone.Close()
		h = (&Server{Store: gone, Log: srv.Log}).Handler()
		if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"database":"unreachable"`) {
			t.Fatalf("readyz with the database closed: %d %s", code, body)
		}
		if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
			t.Fatalf("healthz with the database closed: %d (the process is still up)", code)
		}
	})
}
