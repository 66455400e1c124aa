package ingest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"net/http/httptest"
)

// nodeClientDir holds the @segment/analytics-node script; `npm ci` there installs the client.
const nodeClientDir = "../../test/segment-node"

// TestOfficialNodeClientWithLostResponses runs test/segment-node/send.js, which sends every
// kind of call through @segment/analytics-node, against a server that loses the first answer
// to each batch after storing it: every message must be stored exactly once.
func TestOfficialNodeClientWithLostResponses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		storetest.Unavailable(t, "node is not installed (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules", "@segment", "analytics-node")); err != nil {
		storetest.Unavailable(t, "@segment/analytics-node is not installed: run `cd test/segment-node && npm ci`")
	}
	const tracks = 25
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		_, secret, err := s.CreateKey(ctx, staff.WriteKey, "node backend", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		lossy := &lossyServer{h: ingest.NewHandler(s, ingest.Options{Log: quiet}), seen: map[[32]byte]bool{}}
		srv := httptest.NewServer(lossy)
		defer srv.Close()

		cmd := exec.CommandContext(t.Context(), node, "send.js")
		cmd.Dir = nodeClientDir
		cmd.Env = append(os.Environ(), "SIYU_URL="+srv.URL, "SIYU_WRITE_KEY="+secret, "SIYU_TRACKS=25")
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("node send.js: %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
		var summary struct {
			Sent     int      `json:"sent"`
			Settled  int      `json:"settled"`
			Failures []string `json:"failures"`
		}
		if err := json.Unmarshal(out, &summary); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		if summary.Sent != 6+tracks || summary.Settled != summary.Sent || len(summary.Failures) > 0 {
			t.Fatalf("node client: %+v", summary)
		}
		if lossy.lostAnswers() == 0 {
			t.Fatal("no answer was lost: the test did not exercise retries")
		}
		if n, _ := s.CountEvents(ctx); n != int64(summary.Sent) {
			t.Fatalf("%d events stored, want %d (each message exactly once)", n, summary.Sent)
		}
		c := customerByUser(t, s, "node-u1")
		if c.Name != "孙七" || c.Email != "sq@example.com" || c.Attrs["plan"] != "silver" || c.Region != "浙江省 杭州市" {
			t.Fatalf("customer %+v", c)
		}
		for _, id := range []customer.Identity{{Kind: customer.AnonymousID, Value: "node-a1"}, {Kind: customer.AnonymousID, Value: "node-a2"}} {
			if got, err := s.CustomerByIdentity(ctx, id); err != nil || got != c.ID {
				t.Errorf("%v names customer %d (%v), want %d", id, got, err, c.ID)
			}
		}
		if o, err := s.Order(ctx, "NODE-1"); err != nil || o.AmountMinor != 6660 || len(o.Products) != 1 || o.Products[0].PriceMinor != 3330 {
			t.Fatalf("order %+v %v", o, err)
		}
		for i := range tracks {
			if _, err := s.EventByMessageID(ctx, "node-track-"+itoa(i)); err != nil {
				t.Errorf("track %d: %v", i, err)
			}
		}
	})
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
