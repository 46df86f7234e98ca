# scopegate's build and test entry points. `make test` is the one test
# command: it installs or starts what the tests need (redis-server), then
# vets, runs every test with the race detector, and fuzzes briefly.

GO        ?= go
FUZZTIME  ?= 10s
export REDIS_ADDR ?= 127.0.0.1:6379

.PHONY: test vet unit fuzz redis-server build bench

test: redis-server vet unit fuzz e2e

# build stamps the version (git describe) and the commit into the binary,
# for `scopegate version` and scopegate_build_info. Without git, or outside
# a clone, nothing is stamped and the binary says what the Go toolchain
# recorded, or "unknown".
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
BUILDINFO := github.com/scopegate/scopegate/internal/buildinfo
LDFLAGS := $(if $(VERSION),-X $(BUILDINFO).Version=$(VERSION)) $(if $(COMMIT),-X $(BUILDINFO).Commit=$(COMMIT))

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/scopegate ./cmd/scopegate

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly on top of its seed corpus, which the unit
# run already replays.
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzNormalizePath$$' -fuzztime=$(FUZZTIME) ./policy
	$(GO) test -run='^$$' -fuzz='^FuzzAuthority$$' -fuzztime=$(FUZZTIME) ./policy
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./policy
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzBearer$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzJSONString$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzRedact$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzParseScopes$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzDPoPProof$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzDPoPHTU$$' -fuzztime=$(FUZZTIME) ./authz
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeCheck$$' -fuzztime=$(FUZZTIME) ./envoy
	$(GO) test -run='^$$' -fuzz='^FuzzXFCC$$' -fuzztime=$(FUZZTIME) ./envoy

# The tests need redis-server: the one at REDIS_ADDR if it answers, else
# the tests start their own from the binary. Under CI a missing binary is
# installed; elsewhere the tests say how to install it.
redis-server:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$CI" = "true" ]; then \
			echo "installing redis-server"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "note: redis-server is not installed; tests need it unless $(REDIS_ADDR) answers (apt-get install redis-server)"; \
		fi; \
	fi

# The end-to-end suite runs the scopegate binary against a real Ory Hydra,
# which it builds with cgo from e2e/hydra the first time and keeps in
# e2e/hydra/bin. E2E=0 skips it on machines without a C compiler; CI never
# sets it. go test shows nothing of a passing run until it ends, so what is
# about to take long is said here, before.
.PHONY: e2e
e2e:
ifeq ($(E2E),0)
	@echo "e2e: skipped because E2E=0: the end-to-end suite against Ory Hydra did not run"
else
	@v=$$(cd e2e/hydra && $(GO) list -m -f '{{.Version}}' github.com/ory/hydra/v2 2>/dev/null); \
	if [ -n "$$v" ] && [ -x "e2e/hydra/bin/hydra-$$v" ]; then \
		echo "e2e: reusing Ory Hydra $$v, built before, from e2e/hydra/bin/hydra-$$v"; \
	else \
		echo "e2e: building Ory Hydra $$v with cgo into e2e/hydra/bin (the first run takes about 2 minutes; later runs reuse it)"; \
	fi; \
	echo "e2e: running the end-to-end suite against Ory Hydra (go test -tags e2e ./e2e); it prints when it ends"
	$(GO) test -tags e2e -count=1 ./e2e
endif

# bench measures scopegate against the ext_authz floor on this machine, in
# process and over gRPC, and rewrites docs/performance.md with its chart
# and figures (performance.svg, performance.json). It takes a few minutes
# and is not part of test: it times things.
bench: build
	$(GO) build -trimpath -o bin/scopegate-bench ./cmd/scopegate-bench
	$(GO) test -run='^$$' -bench='^BenchmarkCheck$$' -benchmem -count=1 ./authz > bin/bench-check.txt || { cat bin/bench-check.txt; exit 1; }
	@cat bin/bench-check.txt
	@mkdir -p docs
	bin/scopegate-bench -suite docs/performance.md -scopegate bin/scopegate -gobench bin/bench-check.txt \
		-revision "$$(git rev-parse --short HEAD 2>/dev/null)"
