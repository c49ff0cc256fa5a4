# syntax=docker/dockerfile:1
# Every Épreuve image, one target each. Build from the repository root:
#   docker build --target operator -t epreuve/operator .   the controller
#   docker build --target api      -t epreuve/api .        staff and candidate endpoints, web pages
#   docker build --target gateway  -t epreuve/gateway .    the sandbox gateway candidates connect through
#   docker build --target data-api -t epreuve/data-api .   the HTTP API candidates collect from
#   docker build --target seeder   -t epreuve/seeder .     the operator's seed Job; the API's grading
# Each image holds its own workspace, the shared libraries it imports (crds, kube) and its own
# production dependencies, nothing else: no process's image carries another process's source
# (hack/images/dockerfile.test.ts checks every target against its entrypoint's imports).
# NODE_IMAGE lets the end-to-end tier build from a locally made base without a registry
# (hack/images/build.sh). Every image runs as uid 1000 and writes nothing outside /tmp
# (readOnlyRootFilesystem-friendly).
ARG NODE_IMAGE=node:24-slim

# Production dependencies, installed once per process in one stage: `npm ci --workspace` resolves
# the whole workspace tree from the lockfile, so every workspace's package.json is here. The loop
# shares npm's cache (each package is downloaded once); the cache is dropped at the end.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY crds/package.json crds/
COPY kube/package.json kube/
COPY operator/package.json operator/
COPY api/package.json api/
COPY gateway/package.json gateway/
COPY sandboxes/package.json sandboxes/
RUN set -eu; \
    for workspace in operator api gateway sandboxes; do \
      npm ci --omit=dev --workspace="@epreuve/$workspace" --include-workspace-root=false --no-audit --no-fund; \
      mkdir -p "/deps/$workspace"; \
      mv node_modules "/deps/$workspace/node_modules"; \
    done; \
    npm cache clean --force

# What every image shares. node_modules/@epreuve/* are workspace links to the directories each
# target copies beside them; dependencies go first, sources last (they change most).
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production NODE_OPTIONS=--disable-warning=ExperimentalWarning
USER 1000:1000

FROM runtime AS operator
COPY --from=deps /deps/operator/node_modules node_modules
COPY crds/package.json crds/
COPY crds/src crds/src
COPY kube/package.json kube/
COPY kube/src kube/src
COPY operator/package.json operator/
COPY operator/src operator/src
EXPOSE 8080
ENTRYPOINT ["node", "operator/src/main.ts"]

# The API grades answers and lists exercises with the sandboxes library (exercises, grader).
FROM runtime AS api
COPY --from=deps /deps/api/node_modules node_modules
COPY crds/package.json crds/
COPY crds/src crds/src
COPY kube/package.json kube/
COPY kube/src kube/src
COPY sandboxes/package.json sandboxes/
COPY sandboxes/src sandboxes/src
COPY api/package.json api/
COPY api/src api/src
EXPOSE 8080
ENTRYPOINT ["node", "api/src/main.ts"]

# Candidates' connections on 8443, health and metrics on 9090.
FROM runtime AS gateway
COPY --from=deps /deps/gateway/node_modules node_modules
COPY crds/package.json crds/
COPY crds/src crds/src
COPY kube/package.json kube/
COPY kube/src kube/src
COPY gateway/package.json gateway/
COPY gateway/src gateway/src
EXPOSE 8443 9090
ENTRYPOINT ["node", "gateway/src/main.ts"]

# What runs inside a candidate namespace: no Kubernetes client at all.
FROM runtime AS sandboxes
COPY --from=deps /deps/sandboxes/node_modules node_modules
COPY crds/package.json crds/
COPY crds/src crds/src
COPY sandboxes/package.json sandboxes/
COPY sandboxes/src sandboxes/src

FROM sandboxes AS data-api
EXPOSE 8080
ENTRYPOINT ["node", "sandboxes/src/data-api/main.ts"]

FROM sandboxes AS seeder
ENTRYPOINT ["node", "sandboxes/src/cli.ts"]
CMD ["seed"]
