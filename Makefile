# siyu — see README.md. `make test` runs every test; PostgreSQL tests use the local cluster
# (SIYU_TEST_PG to point elsewhere) and fail instead of skipping when CI=true.
GO ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(shell $(GO) env GOPATH)/bin/staticcheck)
FUZZTIME ?= 2m

.PHONY: all build test lint bench fuzz demo clean

all: lint test

build:
	$(GO) build -o bin/siyu ./cmd/siyu

test:
	$(GO) test -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Each fuzz target (every func FuzzX in a _test.go file) runs for FUZZTIME; findings land in
# the package's testdata/fuzz and become regression seeds. FUZZMINIMIZE bounds how long a new
# input is minimized: the CSV import's runs are slow (SQLite), and the default 60 s stalls it.
FUZZMINIMIZE ?= 10s
fuzz:
	@for f in $$(grep -l '^func Fuzz' $$(find . -name '*_test.go' -not -path './.git/*')); do \
	  pkg=./$$(dirname $${f#./}); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || exit 1; \
	  done; \
	done

demo:
	$(GO) run ./cmd/siyu demo

clean:
	rm -rf bin siyu-demo.db*
