# One image with both entry points: the operator (default) and the worker runtime
#   docker run IMAGE                                   -> node /app/dist/operator/src/main.js
#   docker run IMAGE /app/dist/runtime/src/main.js ... -> a worker (what the operator's Jobs run)
# Runs as uid 65532 and needs no writable path except /tmp (an emptyDir in the chart). It carries
# neither the hack/ tooling nor the fake Anthropic server (a test double): that is the separate
# `fake-judge` target, for tests and demos only.
#
#   docker build -t cj-operator .                                   # from a registry's node:22-slim
#   docker build --build-arg NODE_IMAGE=cj-kind/nodejs:22.23.5 ...  # no registry (hack/kind)
#   docker build --target fake-judge -t cj-fake-judge .
# Without a default bridge (hack/kind's private engine) add `--network host` for `npm ci`.
# No `# syntax=` line: BuildKit would fetch that frontend from a registry.

ARG NODE_IMAGE=node:22-slim

# Production dependencies only. vendor/ holds a patched dependency (vendor/postgres/PATCHES.md):
# npm links node_modules/postgres to ../vendor/postgres, so /app/vendor ships with node_modules.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
  && rm -rf /root/.npm /tmp/*

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Compile, then set aside what must not ship: hack/ (developer tooling) and the fake server.
RUN npm run build && rm -rf dist/hack \
  && mkdir -p /fake/runtime/src/commands \
  && mv dist/runtime/src/fake-anthropic /fake/runtime/src/ \
  && mv dist/runtime/src/commands/fake-anthropic.* /fake/runtime/src/commands/

# The fake Anthropic judge for e2e tests and demos: the runtime plus the fake server.
FROM deps AS fake-judge
COPY --from=build /src/dist /app/dist
COPY --from=build /fake /app/dist
USER 65532:65532
ENV HOME=/tmp NODE_ENV=production
ENTRYPOINT ["node", "/app/dist/runtime/src/main.js", "fake-anthropic"]

# The product (last stage: the default target).
FROM deps AS runtime
ENV NODE_ENV=production
COPY --from=build /src/dist /app/dist
# Nothing under /app is writable by the runtime user.
USER 65532:65532
ENV HOME=/tmp
LABEL org.opencontainers.image.title="cj-operator" \
      org.opencontainers.image.description="Comparative Judgement of student essays as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["node"]
CMD ["/app/dist/operator/src/main.js"]
