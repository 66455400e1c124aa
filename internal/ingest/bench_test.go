package ingest_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestBenchRuns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		r, err := ingest.Bench(ctx, s, ingest.BenchOptions{Events: 1000, BatchSize: 50, Concurrency: 3, Users: 20})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 20 || r.EventsPerSec <= 0 || r.RawEventsPerSec <= 0 {
			t.Fatalf("result %+v", r)
		}
		// Every event was stored once, through HTTP and raw.
		n, err := s.CountEvents(ctx)
		if err != nil || n != 2000 {
			t.Fatalf("%d events stored, want 2000 (%v)", n, err)
		}
	})
}

// benchIngest runs ingest.Bench with b.N events (at least one batch). SIYU_BENCH_CONCURRENCY,
// SIYU_BENCH_BATCH, SIYU_BENCH_WRITERS and SIYU_BENCH_NOGROUP change the shape.
func benchIngest(b *testing.B, eng store.Engine) {
	s := storetest.Open(b, eng)
	o := ingest.BenchOptions{Events: max(b.N, 100), BatchSize: 100, Concurrency: 4, Users: 1000}
	if v, err := strconv.Atoi(os.Getenv("SIYU_BENCH_CONCURRENCY")); err == nil {
		o.Concurrency = v
	}
	if v, err := strconv.Atoi(os.Getenv("SIYU_BENCH_BATCH")); err == nil {
		o.BatchSize = v
	}
	if v, err := strconv.Atoi(os.Getenv("SIYU_BENCH_WRITERS")); err == nil {
		o.Writers = v
	}
	o.NoGroupCommit = os.Getenv("SIYU_BENCH_NOGROUP") != ""
	b.ResetTimer()
	r, err := ingest.Bench(ctx, s, o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.EventsPerSec, "events/s")
	b.ReportMetric(r.RawEventsPerSec, "raw-events/s")
	b.ReportMetric(r.Ratio, "ratio")
	b.Log(r.String())
}

func BenchmarkIngestSQLite(b *testing.B)   { benchIngest(b, store.SQLite) }
func BenchmarkIngestPostgres(b *testing.B) { benchIngest(b, store.Postgres) }
