# scopegate's build and test entry points. `make test` is the one test
# command: it installs or starts what the tests need (redis-server), then
# vets, runs every test with the race detector, and fuzzes briefly.

GO        ?= go
FUZZTIME  ?= 10s
export REDIS_ADDR ?= 127.0.0.1:6379

.PHONY: test vet unit fuzz redis-server build bench

test: redis-server vet unit fuzz e2e

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/scopegate ./cmd/scopegate

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
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeCheck$$' -fuzztime=$(FUZZTIME) ./envoy

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
# sets it.
.PHONY: e2e
e2e:
ifeq ($(E2E),0)
	@echo "e2e: skipped because E2E=0: the end-to-end suite against Ory Hydra did not run"
else
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
