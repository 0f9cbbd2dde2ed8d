# arrwcdc — make targets. `make run` and `make test` are the two that matter.
GO       ?= go
BIN      := $(CURDIR)/bin
TOOLS    := $(CURDIR)/.tools/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 5s
# Tests find the nats CLI and staticcheck here.
export PATH := $(TOOLS):$(PATH)

.PHONY: all build run test test-go fuzz-short fuzz soak lint tools bench bench-compare bench-curves bench-peers clean docker-build compose-up compose-down compose-test

# docker compose v2 or docker-compose v1, whichever answers.
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "docker-compose")

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/arrwcdc ./cmd/arrwcdc

## run: the all-in-one broker and bridge on 127.0.0.1 (NATS :4222, HTTP :8000), data in ./data
run: build
	$(BIN)/arrwcdc serve

## test: the whole suite under -race (goleak in every package), then a few seconds of each fuzz target
test: tools test-go fuzz-short

test-go:
	$(GO) test -race -count=1 -timeout 14m ./...

# Each fuzz target runs alone (go test allows one -fuzz per package run):
# every Fuzz function of the module's tests, as package:Func. A new input
# that widens coverage is minimized for at most FUZZMINIMIZETIME (go test's
# default, 60 s, can spend a short run minimizing one input). Expanded only
# by the fuzz targets (=, not :=): other targets do not read the tests.
FUZZ_TARGETS = $(shell grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz.*)|\1:\2|' | sort)
FUZZMINIMIZETIME ?= 2s

# A failing run prints its output and runs once more: an input that fails
# is saved under testdata/fuzz and fails the second run at once, while the
# fuzzer's own hiccups on a loaded machine (a worker reported hung) pass.
fuzz-short:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		if ! $(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) ./$$pkg >$$log 2>&1; then \
			cat $$log; echo "fuzz $$pkg $$fn failed; once more"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) ./$$pkg; \
		fi; \
	done

## soak: the long variants: a link cut every 2 s for a minute, resume across a 100k backlog
soak:
	ARRWCDC_SOAK=1 $(GO) test -race -count=1 -timeout 10m -run 'TestLinkDrops|TestResumeBacklog' ./bridge/

## fuzz: a longer campaign by hand: make fuzz FUZZTIME=10m
fuzz: fuzz-short

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

## tools: the nats CLI (interop tests) and staticcheck, into .tools/bin
tools: $(TOOLS)/nats $(TOOLS)/staticcheck

$(TOOLS)/nats:
	GOBIN=$(TOOLS) $(GO) install github.com/nats-io/natscli/nats@v0.5.0

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## bench: Go benchmarks of the hot paths (no timed assertions live in make test)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## bench-compare: arrwcdc bench against nats bench and nats-server's websocket listener in one run, with ratios (docs/performance.md); RUNS=1 for a quicker look, ONLY=outbox,replay for some pairs
RUNS ?= 3
ONLY ?=
bench-compare: build tools
	$(GO) run ./internal/bench/compare -arrwcdc $(BIN)/arrwcdc -nats $(TOOLS)/nats -runs $(RUNS) -only '$(ONLY)'

## bench-peers: the bridge's WebSocket fan-out against nats-server's websocket listener and Centrifugo v6.9.1 (built into .tools/bin, never committed)
bench-peers: build tools $(TOOLS)/centrifugo
	$(GO) run ./internal/bench/compare -peers -arrwcdc $(BIN)/arrwcdc -nats $(TOOLS)/nats -centrifugo $(TOOLS)/centrifugo -runs $(RUNS)

$(TOOLS)/centrifugo:
	GOBIN=$(TOOLS) $(GO) install github.com/centrifugal/centrifugo/v6@v6.9.1

## bench-curves: throughput and p99 at 1-1000 WebSocket clients and 1-10k libraries
bench-curves: build tools
	$(GO) run ./internal/bench/compare -curves -arrwcdc $(BIN)/arrwcdc -nats $(TOOLS)/nats

## docker-build: the FROM-scratch image arrwcdc:local (nothing is pulled)
docker-build:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/docker/arrwcdc ./cmd/arrwcdc
	docker build -q -t arrwcdc:local .

## compose-up: 3 brokers, 2 bridges, 2 demo-apps on 127.0.0.1 (see docker-compose.yml for ports)
compose-up: docker-build
	$(COMPOSE) up -d

compose-down:
	$(COMPOSE) down -v

## compose-test: the deployment end to end; skips with a message where no Docker engine answers
compose-test: tools
	@if ! docker info >/dev/null 2>&1; then echo "compose-test: SKIP: no Docker engine answers"; exit 0; fi; \
	$(MAKE) docker-build && \
	ARRWCDC_COMPOSE_TEST=1 COMPOSE="$(COMPOSE)" $(GO) test -count=1 -timeout 15m -v -run TestCompose ./test/compose/

clean:
	rm -rf $(BIN) data
