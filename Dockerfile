# syntax=docker/dockerfile:1
# Every Épreuve image, one target each. Build from the repository root:
#   docker build --target operator -t epreuve/operator .   the controller
#   docker build --target api      -t epreuve/api .        staff and candidate endpoints, web pages
#   docker build --target gateway  -t epreuve/gateway .    the sandbox gateway candidates connect through
#   docker build --target data-api -t epreuve/data-api .   the HTTP API candidates collect from
#   docker build --target seeder   -t epreuve/seeder .     the operator's seed Job; the API's grading
# Each image runs compiled JavaScript: its entrypoint and the workspace sources it imports bundled
# into one file (the `build` stage, hack/images/bundle.ts), beside its own production
# dependencies and the data files it reads at run time, nothing else: no TypeScript source, no
# type stripping at start, no other process's code (hack/images/dockerfile.test.ts checks every
# target against its entrypoint's imports). NODE_IMAGE lets the end-to-end tier build from a
# locally made base without a registry (hack/images/build.sh). Every image runs as uid 1000 and
# writes nothing outside /tmp (readOnlyRootFilesystem-friendly).
ARG NODE_IMAGE=node:24-slim

# Production dependencies, installed once per process in one stage: `npm ci --workspace` resolves
# the whole workspace tree from the lockfile, so every workspace's package.json is here. The loop
# shares npm's cache (each package is downloaded once); the cache is dropped at the end. npm's
# links to the workspaces themselves (node_modules/@epreuve) go: the bundles hold that code.
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
      rm -rf node_modules/@epreuve; \
      mkdir -p "/deps/$workspace"; \
      mv node_modules "/deps/$workspace/node_modules"; \
    done; \
    npm cache clean --force

# Each entrypoint bundled into <workspace>/<path>.mjs (hack/images/bundle.ts): rolldown alone is
# installed, at its lockfile versions (22 MB, not the whole development tree), then every
# workspace's package.json (their `exports`) and sources. Takes about a second for all five.
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package-lock.json ./
COPY hack/images/bundle.ts hack/images/
RUN npm install --no-save --no-package-lock --no-audit --no-fund $(node hack/images/bundle.ts --bundler-packages) && \
    npm cache clean --force
COPY crds/package.json crds/
COPY crds/src crds/src
COPY kube/package.json kube/
COPY kube/src kube/src
COPY operator/package.json operator/
COPY operator/src operator/src
COPY api/package.json api/
COPY api/src api/src
COPY gateway/package.json gateway/
COPY gateway/src gateway/src
COPY sandboxes/package.json sandboxes/
COPY sandboxes/src sandboxes/src
RUN node hack/images/bundle.ts dist operator/src/main.ts api/src/main.ts gateway/src/main.ts \
      sandboxes/src/data-api/main.ts sandboxes/src/cli.ts

# What every image shares.
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production NODE_OPTIONS=--disable-warning=ExperimentalWarning
USER 1000:1000

FROM runtime AS operator
COPY --from=deps /deps/operator/node_modules node_modules
COPY --from=build /build/dist/operator operator
EXPOSE 8080
# --optimize-for-size: V8 collects for a small heap and gives freed pages back (NODE_OPTIONS
# refuses this flag, so it is here, not in the chart): 144–151 MB of RSS with 1 000 assessments
# cached against 176 MB without it, for 15–25 % more CPU (docs/benchmarks.md, "Operator
# footprint"; test/bench/operator-provisioning.ts reads this line and runs the operator with it).
ENTRYPOINT ["node", "--optimize-for-size", "operator/main.mjs"]

# The API grades answers and lists exercises with the sandboxes library (exercises, grader), and
# reads its web pages and guides at run time (at their repository paths: bundle.ts rewrites
# import.meta.dirname to them).
FROM runtime AS api
COPY --from=deps /deps/api/node_modules node_modules
COPY api/src/web api/src/web
COPY api/src/guides/*.yaml api/src/guides/
COPY --from=build /build/dist/api api
EXPOSE 8080
ENTRYPOINT ["node", "api/main.mjs"]

# Candidates' connections on 8443, health and metrics on 9090.
FROM runtime AS gateway
COPY --from=deps /deps/gateway/node_modules node_modules
COPY --from=build /build/dist/gateway gateway
EXPOSE 8443 9090
ENTRYPOINT ["node", "gateway/main.mjs"]

# What runs inside a candidate namespace: no Kubernetes client at all.
FROM runtime AS sandboxes
COPY --from=deps /deps/sandboxes/node_modules node_modules
COPY --from=build /build/dist/sandboxes sandboxes
# The standard dataset's generated tables, made by this image's own generator (seconds of CPU
# the seed Job and the data API would otherwise spend on the way to Ready; datasets/prebuilt.ts).
# Root for the write only: the files stay read-only to uid 1000.
ENV EPREUVE_PREBUILT_DIR=/app/prebuilt
USER root
RUN node sandboxes/cli.mjs prebuild "$EPREUVE_PREBUILT_DIR"
USER 1000:1000

FROM sandboxes AS data-api
EXPOSE 8080
ENTRYPOINT ["node", "sandboxes/data-api/main.mjs"]

FROM sandboxes AS seeder
ENTRYPOINT ["node", "sandboxes/cli.mjs"]
CMD ["seed"]
