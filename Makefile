# ceilopoll's task runner (what tox would do). Every target works on a fresh Debian 12 machine as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json
LAB := test/lab
# Guests for `make lab-up`: one word a guest (see test/lab/up.sh for the profiles).
LAB_GUESTS ?= stats stats stats none nostats noballoon paused shutoff
DEMO_GUESTS ?= stats stats

.PHONY: help install build lint test test-unit test-integration lab-up lab-down bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

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

test: install lab-up ## everything: lint, unit and integration tests against a real libvirtd and QEMU guests
	$(MAKE) lint
	CEILOPOLL_LAB=1 npx vitest run

test-integration: install lab-up ## integration tests only
	CEILOPOLL_LAB=1 npx vitest run test/integration

lab-up: ## install libvirt + QEMU with apt, start libvirtd, boot the lab guests (LAB_GUESTS)
	$(LAB)/up.sh $(LAB_GUESTS)

lab-down: ## destroy the lab guests and stop the daemons lab-up started
	$(LAB)/down.sh

bench: build lab-up ## libvirt client benchmarks against virsh (figures and ratios)
	node dist/bench/libvirt-stats.js

demo: build ## set up a lab with 2 guests and print their memory stats through the client
	$(LAB)/up.sh $(DEMO_GUESTS)
	node dist/src/cli/main.js memstats

clean: ## remove build output (the lab stays: make lab-down)
	rm -rf dist coverage
