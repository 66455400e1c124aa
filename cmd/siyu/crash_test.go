package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// buildSiyu builds the binary once per test run.
var buildSiyu = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "siyu-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "siyu")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type server struct {
	cmd *exec.Cmd
	url string
}

// startServer runs `siyu serve` on a free port and returns once it listens: it reads the
// "serving at" line from the child's stdout instead of polling.
func startServer(t *testing.T, bin, dsn string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--db", dsn, "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SIYU_ADMIN_PASSWORD=crash-test-password")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "siyu is serving at "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return &server{cmd: cmd, url: u}
		}
	}
	t.Fatalf("siyu serve exited before listening: %v", sc.Err())
	return nil
}

func createWriteKey(t *testing.T, bin, dsn string) string {
	t.Helper()
	out, err := exec.Command(bin, "keys", "create", "--kind", "write", "--db", dsn).Output()
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestAcknowledgedWritesSurviveKill9 sends batches (tracks, identifies that merge, orders)
// from several clients, kills the server with SIGKILL at a random moment several times, and
// checks that every message answered 200 is stored exactly once.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildSiyu()
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range storetest.Engines {
		t.Run(string(eng), func(t *testing.T) {
			dsn := storetest.DSN(t, eng)
			if out, err := exec.Command(bin, "migrate", "--db", dsn).CombinedOutput(); err != nil {
				t.Fatalf("migrate: %v %s", err, out)
			}
			key := createWriteKey(t, bin, dsn)
			seed := time.Now().UnixNano()
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			var (
				mu     sync.Mutex
				acked  = map[string]bool{}
				orders = map[string]bool{}
				seq    int
			)
			for round := 0; round < 3; round++ {
				srv := startServer(t, bin, dsn)
				killAfter := 5 + rng.IntN(25)
				var wg sync.WaitGroup
				ackc := make(chan struct{}, 1000)
				stop := make(chan struct{})
				for c := 0; c < 4; c++ {
					wg.Add(1)
					go func(c int) {
						defer wg.Done()
						client := &http.Client{Timeout: 30 * time.Second}
						for b := 0; ; b++ {
							select {
							case <-stop:
								return
							default:
							}
							mu.Lock()
							seq++
							n := seq
							mu.Unlock()
							batch, ids, ords := crashBatch(round, c, n)
							req, _ := http.NewRequest("POST", srv.url+"/v1/batch", bytes.NewReader(batch))
							req.SetBasicAuth(key, "")
							req.Header.Set("Content-Type", "application/json")
							resp, err := client.Do(req)
							if err != nil {
								return // the server died
							}
							resp.Body.Close()
							if resp.StatusCode != 200 {
								t.Errorf("batch answered %d", resp.StatusCode)
								return
							}
							mu.Lock()
							for _, id := range ids {
								acked[id] = true
							}
							for _, o := range ords {
								orders[o] = true
							}
							mu.Unlock()
							ackc <- struct{}{}
						}
					}(c)
				}
				for i := 0; i < killAfter; i++ {
					<-ackc
				}
				srv.cmd.Process.Signal(syscall.SIGKILL)
				srv.cmd.Wait()
				close(stop)
				go func() {
					for range ackc {
					}
				}()
				wg.Wait()
				close(ackc)
			}
			st, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for id := range acked {
				if _, err := st.EventByMessageID(context.Background(), id); err != nil {
					t.Fatalf("acknowledged message %s lost: %v", id, err)
				}
			}
			for o := range orders {
				if _, err := st.Order(context.Background(), o); err != nil {
					t.Fatalf("acknowledged order %s lost: %v", o, err)
				}
			}
			n, _ := st.CountEvents(context.Background())
			if int(n) < len(acked) {
				t.Fatalf("%d events stored, %d acknowledged", n, len(acked))
			}
			t.Logf("%d messages acknowledged over 3 kills, all present; %d events stored", len(acked), n)
		})
	}
}

// crashBatch makes a batch of 40 messages: tracks for a few users, an identify linking an
// anonymous id to a user (a merge), and an order.
func crashBatch(round, client, n int) ([]byte, []string, []string) {
	var msgs []map[string]any
	var ids []string
	user := fmt.Sprintf("u-%d", n%50)
	anon := fmt.Sprintf("anon-%d-%d-%d", round, client, n)
	for i := 0; i < 37; i++ {
		id := fmt.Sprintf("m-%d-%d-%d-%d", round, client, n, i)
		ids = append(ids, id)
		msgs = append(msgs, map[string]any{"type": "track", "messageId": id, "anonymousId": anon, "event": "Page Viewed", "properties": map[string]any{"i": i}})
	}
	id := fmt.Sprintf("i-%d-%d-%d", round, client, n)
	ids = append(ids, id)
	msgs = append(msgs, map[string]any{"type": "identify", "messageId": id, "userId": user, "anonymousId": anon, "traits": map[string]any{"name": "客户" + user}})
	order := fmt.Sprintf("o-%d-%d-%d", round, client, n)
	id = "oc-" + order
	ids = append(ids, id)
	msgs = append(msgs, map[string]any{"type": "track", "messageId": id, "userId": user, "event": "Order Completed", "properties": map[string]any{"order_id": order, "total": 99.5, "currency": "CNY"}})
	id = "t-" + order
	ids = append(ids, id)
	msgs = append(msgs, map[string]any{"type": "track", "messageId": id, "userId": user, "event": "加企微"})
	b, _ := json.Marshal(map[string]any{"batch": msgs})
	return b, ids, []string{order}
}
