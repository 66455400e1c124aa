package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/backup"
	"github.com/siyu-scrm/siyu/internal/store"
)

// TestBackupOfARunningServer runs `siyu serve` as a child process, keeps sending batches to
// it, and meanwhile runs `siyu backup` (another process, as an operator would): the backup
// checks out, holds every batch acknowledged before it began, and restores with `siyu restore`.
func TestBackupOfARunningServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildSiyu()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dsn := filepath.Join(dir, "live.db")
	if out, err := exec.Command(bin, "migrate", "--db", dsn).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	key := createWriteKey(t, bin, dsn)
	srv := startServer(t, bin, dsn)

	var (
		mu    sync.Mutex
		acked []string
		n     atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, ids, _ := crashBatch(0, c, i)
				req, _ := http.NewRequest("POST", srv.url+"/v1/batch", bytes.NewReader(body))
				req.SetBasicAuth(key, "")
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("batch: %v", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("batch answered %d", resp.StatusCode)
					return
				}
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	for n.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	file := filepath.Join(dir, "live.siyu")
	out, err := exec.Command(bin, "backup", file, "--db", dsn).CombinedOutput()
	batchesAtEnd := n.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("siyu backup: %v\n%s", err, out)
	}
	t.Logf("%s(%d batches acknowledged before the backup began, %d when it ended)", out, len(before)/40, batchesAtEnd)

	info, err := backup.Inspect(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if info.SchemaVersion != store.SchemaVersion() {
		t.Fatalf("backup schema version %d, want %d", info.SchemaVersion, store.SchemaVersion())
	}
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range before {
		var x int
		if err := db.QueryRow(`SELECT 1 FROM events WHERE message_id = ?`, id).Scan(&x); err != nil {
			t.Fatalf("message %s, acknowledged before the backup began, is not in it: %v", id, err)
		}
	}

	// Again without --force: refused, the file untouched. Restore into a fresh path.
	if out, err := exec.Command(bin, "backup", file, "--db", dsn).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Fatalf("second backup to the same file: %v\n%s", err, out)
	}
	restored := filepath.Join(dir, "restored.db")
	if out, err := exec.Command(bin, "restore", file, "--db", restored).CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf("schema version %d", store.SchemaVersion())) {
		t.Fatalf("siyu restore: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "restore", file, "--db", restored).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Fatalf("restore over an existing database: %v\n%s", err, out)
	}
}

func TestBackupOfPostgresPrintsTheCommands(t *testing.T) {
	code, out, errOut := runCLI(t, "backup", "siyu.dump", "--db", "postgres://siyu:pw@db.internal/siyu")
	if code != 1 || !strings.Contains(out, "pg_dump --format=custom") || !strings.Contains(out, "pg_restore") || strings.Contains(out, "pw@") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "backup"); code != 2 || !strings.Contains(errOut, "Usage: siyu backup") {
		t.Fatalf("no FILE: exit %d %q", code, errOut)
	}
}
