package demo

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// TestMeasure times a full-size generation when asked to:
//
//	SIYU_DEMO_MEASURE=1000000 go test ./internal/demo -run TestMeasure -v -timeout 30m
//	SIYU_DEMO_MEASURE=20000 SIYU_DEMO_ENGINE=postgres go test ./internal/demo -run TestMeasure -v
func TestMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIYU_DEMO_MEASURE"))
	if n <= 0 {
		t.Skip("set SIYU_DEMO_MEASURE=<customers> to time a generation")
	}
	eng := store.SQLite
	if os.Getenv("SIYU_DEMO_ENGINE") == "postgres" {
		eng = store.Postgres
	}
	s := storetest.Open(t, eng)
	p := progress.New("demo", int64(n), os.Stderr, nil)
	start := time.Now()
	sum, err := Generate(ctx, s, Options{Customers: n, Seed: 1, Anchor: anchor, Progress: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, %d customers: %s (%+v)", eng, n, time.Since(start).Round(time.Millisecond), sum)
}
