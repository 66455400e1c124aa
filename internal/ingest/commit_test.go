package ingest

import (
	"context"
	"testing"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func messages(t *testing.T, body string) []*Message {
	t.Helper()
	p, err := Decode([]byte(body), Batch, received)
	if err != nil || len(p.Errors) > 0 {
		t.Fatalf("decode: %v %v", err, p.Errors)
	}
	return p.Messages
}

// TestGroupCommitIsolatesRequests runs three requests in one shared transaction, as group
// commit does under load: an atomic request that fails is undone alone, and message ids are
// deduplicated across the requests of the group.
func TestGroupCommitIsolatesRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := &committer{st: s, group: true, maxGroup: 1000, maxQueue: 1000}
		seed := c.run([]*job{{msgs: messages(t, `{"batch":[{"type":"identify","userId":"g0","messageId":"seed","traits":{"age":3}}]}`)}})
		if seed[0].err != nil || seed[0].outcomes[0] != Stored {
			t.Fatalf("seed: %+v", seed[0])
		}
		jobs := []*job{
			{msgs: messages(t, `{"batch":[{"type":"track","userId":"g1","event":"A","messageId":"j1-a"},{"type":"track","userId":"g1","event":"B","messageId":"seed"}]}`)},
			{atomic: true, msgs: messages(t, `{"batch":[{"type":"track","userId":"g2","event":"A","messageId":"j2-a"},{"type":"identify","userId":"g2","messageId":"j2-b","traits":{"age":"x"}}]}`)},
			{msgs: messages(t, `{"batch":[{"type":"track","userId":"g3","event":"A","messageId":"j2-a"},{"type":"track","userId":"g3","event":"A","messageId":"j1-a"}]}`)},
		}
		res := c.run(jobs)
		want := [][]string{{Stored, Duplicate}, {"", Invalid}, {Stored, Duplicate}}
		for i, r := range res {
			if r.err != nil {
				t.Fatalf("job %d: %v", i, r.err)
			}
			for k, o := range r.outcomes {
				if o != want[i][k] {
					t.Errorf("job %d message %d: %q, want %q", i, k, o, want[i][k])
				}
			}
		}
		if res[1].errs[1] == nil || res[1].errs[1].Field != "traits.age" {
			t.Fatalf("atomic job error %+v", res[1].errs[1])
		}
		// j2-a was stored by job 3 (for g3), not by the undone atomic job (g2).
		ev, err := s.EventByMessageID(context.Background(), "j2-a")
		if err != nil {
			t.Fatal(err)
		}
		g3, _ := s.CustomerByIdentity(context.Background(), messages(t, `{"batch":[{"type":"track","userId":"g3","event":"x"}]}`)[0].Identities[0])
		if ev.CustomerID != g3 {
			t.Fatalf("j2-a on customer %d, want g3 (%d)", ev.CustomerID, g3)
		}
		if n, _ := s.CountEvents(context.Background()); n != 3 {
			t.Fatalf("%d events, want 3", n)
		}
	})
}
