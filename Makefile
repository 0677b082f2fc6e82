# ceilopoll's task runner (what tox would do). Every target works on a fresh Debian 12 machine as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json
LAB := test/lab
# Guests for `make lab-up`: one word a guest (see test/lab/up.sh for the profiles).
LAB_GUESTS ?= stats stats stats none nostats noballoon paused shutoff
DEMO_GUESTS ?= stats nostats
# `make soak`: how long the agent runs (the issue's proof is 10 minutes at a 10 s interval)
SOAK_SECONDS ?= 600

.PHONY: help install build lint test test-unit test-integration e2e e2e-trixie soak rabbitmq-up lab-up lab-down ceilometer-install ceilometer-trixie-install bench demo clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES) ## install the npm dependencies (npm ci)

build: install ## compile TypeScript to dist/
	npx tsc -p tsconfig.json

lint: install ## eslint and the strict type check
	npx eslint .
	npx tsc -p tsconfig.json --noEmit

test-unit: install ## unit tests only (no libvirt needed)
	npx vitest run test/unit

test: install lab-up ceilometer-install ## everything: lint, unit, integration, e2e (notification agent: Zed, then Ceilometer 24 in a trixie root; then Gnocchi), the 10-minute soak and fault injection (real libvirtd, QEMU guests, RabbitMQ, notification agent)
	$(MAKE) lint
	$(MAKE) rabbitmq-up
	npx vitest run
	$(MAKE) e2e
	$(MAKE) e2e-trixie
	$(MAKE) e2e-gnocchi
	$(MAKE) soak
	$(MAKE) chaos

soak: install lab-up rabbitmq-up ## the built agent for SOAK_SECONDS at a 10 s interval: overlap, RSS, /healthz, /metrics, SIGHUP, SIGUSR2, SIGTERM
	CEILOPOLL_SOAK_SECONDS=$(SOAK_SECONDS) npx vitest run --config vitest.soak.config.ts

chaos: install lab-up rabbitmq-up ceilometer-install ## fault injection (issue 6, part of make test): libvirtd SIGKILL, guest faults, 2-min broker outage, RabbitMQ SIGKILL, full spool disk, fuzzing; writes test/chaos/last-report.md (CHAOS_ARGS: vitest filters)
	npx vitest run --config test/chaos/vitest.config.ts $(CHAOS_ARGS)

ceilometer-trixie-install: ## Debian 13's Ceilometer 24.0.0 (2025.1) in a trixie root made by debootstrap (test/lab/ceilometer-trixie.sh; about 3 minutes, 820 MB)
	bash test/lab/ceilometer-trixie.sh install

ceilometer-install: ## Debian's ceilometer-agent-notification (and with it /etc/ceilometer's shipped ceilometer.conf and polling.yaml)
	bash test/e2e/notification-agent.sh install

e2e: install lab-up rabbitmq-up ## ceilopoll -> RabbitMQ -> Debian's ceilometer-agent-notification (apt), checked end to end
	npx vitest run --config vitest.e2e.config.ts

e2e-trixie: install lab-up rabbitmq-up ceilometer-install ceilometer-trixie-install ## the same end-to-end tests against Debian 13's ceilometer-agent-notification (Ceilometer 24.0.0, 2025.1) in a trixie root
	CEILOMETER_RELEASE=trixie npx vitest run --config vitest.e2e.config.ts

e2e-gnocchi: install lab-up rabbitmq-up ## ceilopoll -> RabbitMQ -> ceilometer-agent-notification -> a real Gnocchi 4.4 (apt, PostgreSQL, file storage), checked measure by measure
	npx vitest run --config test/gnocchi/vitest.config.ts

rabbitmq-up: ## start the machine's RabbitMQ if it is not answering on 127.0.0.1:5672
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then \
	  command -v rabbitmq-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server; }; \
	  rabbitmq-server -detached; \
	  for i in $$(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done; \
	  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || { echo "RabbitMQ did not come up on 127.0.0.1:5672"; exit 1; }; \
	fi

test-integration: install lab-up rabbitmq-up ## integration tests only
	npx vitest run test/integration

lab-up: ## install libvirt + QEMU with apt, start libvirtd, boot the lab guests (LAB_GUESTS)
	$(LAB)/up.sh $(LAB_GUESTS)

lab-down: ## destroy the lab guests and stop the daemons lab-up started
	$(LAB)/down.sh

bench: install lab-up rabbitmq-up ## benchmarks: libvirt client vs virsh, publishing with confirms, the spool, one agent cycle at 1000 domains
	npx tsx bench/libvirt-stats.ts
	npx tsx bench/publish.ts
	npx tsx bench/spool.ts
	npx tsx bench/cycle.ts

bench-compare: install lab-up rabbitmq-up ## ceilopoll vs Debian's ceilometer-polling, Zed (Debian 12) and 24.0 (Debian 13 root), on the same libvirtd: wall, CPU, libvirt calls, RSS per cycle (bench/compare)
	bash bench/compare/run.sh

demo: install rabbitmq-up ## libvirtd with 2 guests, RabbitMQ; check-config, doctor, then the agent for a few cycles and the memory.usage samples as they arrive from the bus
	$(LAB)/up.sh $(DEMO_GUESTS)
	$(LAB)/demo.sh

clean: ## remove build output (the lab stays: make lab-down)
	rm -rf dist coverage
