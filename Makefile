# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
# Dev-mode API key for `make run` (organization "dev-org"); override freely.
DEV_API_KEYS ?= dev-org:dev-api-key-0123456789
TEST_TIMEOUT ?= 8m

.PHONY: run run-mongo test vet fmt-check proto proto-check bench bench-receiver test-faults soak jirasim snsim snowsim demo build clean

## run: the whole platform on embedded defaults (NATS JetStream + SQLite under ./data)
# Built then exec'd (not `go run`) so that Ctrl-C reaches the platform and its
# clean exit status reaches make.
run:
	mkdir -p bin && $(GO) build -o bin/itsm ./cmd/itsm
	ITSM_DEV=true ITSM_API_KEYS="$${ITSM_API_KEYS:-$(DEV_API_KEYS)}" exec bin/itsm run

## run-mongo: `make run` on the production MongoDB store, against a MongoDB
## wire-protocol server embedded in the binary (FerretDB on SQLite files under
## ./data/ferretdb, listening on 127.0.0.1:27017). For seeing that code path
## work, not for production: FerretDB is not MongoDB (docs/mongodb.md).
run-mongo:
	mkdir -p bin && cd wiretest && $(GO) build -o ../bin/itsm-wire ./cmd/itsm-wire
	ITSM_DEV=true ITSM_API_KEYS="$${ITSM_API_KEYS:-$(DEV_API_KEYS)}" exec bin/itsm-wire

## build: every binary into ./bin
build:
	mkdir -p bin && $(GO) build -o bin/ ./cmd/...

## test: formatting, vet, schema freshness and every test (real NATS, real SQLite),
## then the wiretest module's: the MongoDB store on an embedded wire-protocol server
## (FerretDB), its own module so production binaries do not carry it.
test: fmt-check vet proto-check
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd wiretest && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

vet:
	$(GO) vet ./...
	cd wiretest && $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## proto: regenerate Go code from proto/ ; proto-check: fail if it is stale
proto:
	bash scripts/proto-check.sh --write

proto-check:
	@if [ -f scripts/proto-check.sh ]; then bash scripts/proto-check.sh; fi

## bench: every published performance figure, each with its same-run baseline
bench:
	bash scripts/bench.sh

bench-receiver:
	$(GO) test -run '^$$' -bench 'BenchmarkReceiverVsBareEcho' -benchtime 20000x -count 5 ./services/receiver/ | tee /tmp/itsm-bench-receiver.txt
	$(GO) run ./scripts/benchsummary < /tmp/itsm-bench-receiver.txt

## test-faults: kill -9 the normalizer, restart NATS, a 30 s store outage and a
## 3-node cluster losing a node, all under a Jira and a ServiceNow push load side
## by side; zero loss required for both vendors (~3 min). Counts tables (one row
## per vendor) land in /tmp/itsm-faults/. FAULT_STORE_OUTAGE=10s shortens a dev run.
test-faults:
	FAULT_STORE_OUTAGE=$${FAULT_STORE_OUTAGE:-30s} $(GO) test -tags faults -count=1 -timeout 15m -v ./test/faults/ | tee /tmp/itsm-faults.txt; exit $${PIPESTATUS[0]}

## soak: 10 minutes at a steady rate, heap and goroutines sampled; fails on a
## growth trend. SOAK_DURATION and SOAK_RATE override; report in /tmp/itsm-soak.txt.
soak:
	$(GO) test -tags soak -count=1 -timeout $${SOAK_TIMEOUT:-30m} -v ./test/soak/ | grep -v '^        *[0-9]*,'; exit $${PIPESTATUS[0]}

## demo: the simulator and the platform; a connection through OAuth; tickets flowing in
demo:
	bash scripts/demo.sh

## jirasim: the Jira Cloud simulator on 127.0.0.1:9090
jirasim:
	$(GO) run ./cmd/jirasim

## snsim: the ServiceNow simulator on 127.0.0.1:9091 (flags: go run ./cmd/snsim -h; SNSIM_FLAGS passes them)
snsim:
	$(GO) run ./cmd/snsim $(SNSIM_FLAGS)

## snowsim: the same, by the name the ServiceNow issue gave it
snowsim: snsim

clean:
	rm -rf bin data

## bench-lanes: webhooks at 200/s of two organizations while one of them runs a full
## sync (ITSM_BENCH_ISSUES, default here 20000), against the same load with nothing
## syncing; a 1,000-issue tenant's full sync alone and during it. LANES_COUNT runs.
.PHONY: bench-lanes
bench-lanes:
	ITSM_BENCH_ISSUES=$${ITSM_BENCH_ISSUES:-20000} $(GO) test -run '^$$' -bench '^BenchmarkLiveDuringFullSync$$' -benchtime 1x -count $${LANES_COUNT:-3} -timeout 60m ./scripts/loadgen/ | tee /tmp/itsm-bench-lanes.txt; exit $${PIPESTATUS[0]}
	$(GO) run ./scripts/benchsummary < /tmp/itsm-bench-lanes.txt

## bench-servicenow: a ServiceNow full sync end to end (ITSM_BENCH_INCIDENTS incidents, default
## 100000, 3 journal entries each: simulator, backfill worker in its own process, RAW, normalizer, SQLite).
.PHONY: bench-servicenow
bench-servicenow:
	$(GO) test -run '^$$' -bench '^BenchmarkServiceNowFullSync$$' -benchtime 1x -timeout 30m ./services/backfill/
