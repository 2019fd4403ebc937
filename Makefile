# The only commands a newcomer needs. `make run` starts mako on the embedded
# broker with deploy/mako.example.yaml; `make test` runs everything CI runs.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s
# Each input that finds new coverage is minimized first; unbounded (60s),
# one large input could take the whole FUZZTIME.
FUZZMINTIME ?= 5s

.PHONY: all build run test browser-deps lint fuzz bench tidy clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mako ./cmd/mako
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mako-bench ./cmd/mako-bench

run: build
	$(BIN)/mako -c deploy/mako.example.yaml

# Race detector on; real redis-server, real HTTP services, real sockets.
test: browser-deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Each fuzz target for FUZZTIME (go test fuzzes one target per run), in
# every package that has one. Seed corpora (f.Add and testdata/fuzz/) run
# in `make test`; a crasher lands in the package's testdata/fuzz/ and is
# kept there as a regression seed.
FUZZPKGS = $(sort $(dir $(shell grep -rl --include='*_test.go' '^func Fuzz' .)))
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg; \
	  done; done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) mako mako-bench

# playwright-core for test/browser (it downloads no browser: the tests use
# Debian's chromium), installed from the lock file when the locked version
# is not there yet. MAKO_SKIP_BROWSER=1 skips it, as it skips the tests.
browser-deps:
	@if [ "$${MAKO_SKIP_BROWSER:-}" != 1 ] && command -v npm >/dev/null 2>&1; then \
	  cd test/browser && \
	  lock=$$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version") && \
	  have=$$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true) && \
	  if [ "$$lock" != "$$have" ]; then npm ci --no-audit --no-fund; fi; \
	fi
