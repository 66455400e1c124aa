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

# Each fuzz target runs for FUZZTIME; findings land in testdata/fuzz and become regression seeds.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

demo:
	$(GO) run ./cmd/siyu demo

clean:
	rm -rf bin siyu-demo.db*
