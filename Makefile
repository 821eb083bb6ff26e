# synapse-go developer targets. `make test-all` is what CI runs (.ci/run).
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s

.PHONY: test test-integration test-browser test-all bench bench-server bench-peer lint fuzz

## test: unit tests, examples and fuzz seed corpora, with the race detector
test:
	$(GO) test -race -count=1 ./...

## test-integration: end-to-end tests against real services (see scripts/test-integration.sh)
test-integration:
	./scripts/test-integration.sh

## test-browser: the dashboard in headless chromium alone (installs Debian's chromium as root; part of test-integration)
test-browser:
	chromium=$$(./scripts/chromium.sh) && SYNAPSE_TEST_CHROMIUM=$$chromium SYNAPSE_TEST_ARTIFACTS=$${SYNAPSE_TEST_ARTIFACTS:-$$PWD/test-artifacts} \
		$(GO) test -race -count=1 -tags integration -run TestDashboardBrowser -v ./internal/server/

## test-all: everything CI checks
test-all: lint test test-integration

## bench: all benchmarks; numbers go to docs/benchmarks.md
bench:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkServer' -benchmem -count 5 ./... | tee bench.out
	./scripts/bench-run.sh
	./scripts/bench-server.sh
	./scripts/bench-peer.sh

## bench-server: the synapse server benchmarks alone, on SQLite and PostgreSQL (scripts/bench-server.sh)
bench-server:
	./scripts/bench-server.sh

## bench-peer: synapse-go and the Python SDK side by side, local/job/task/remote (scripts/bench-peer.sh; uses or starts a Ray head)
bench-peer:
	./scripts/bench-peer.sh

## lint: formatting, vet, staticcheck, tidy go.mod
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	./scripts/check-imports.sh

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/params
	$(GO) test -run '^$$' -fuzz '^FuzzEnvGetters$$' -fuzztime $(FUZZTIME) .
