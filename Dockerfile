# syntax=docker/dockerfile:1
# One image with both entry points: the operator (default) and the worker runtime
#   docker run IMAGE                                   -> node /app/dist/operator/src/main.js
#   docker run IMAGE /app/dist/runtime/src/main.js ... -> a worker (what the operator's Jobs run)
# Runs as uid 65532 and needs no writable path except /tmp (an emptyDir in the chart).

ARG NODE_IMAGE=node:22-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY contract ./contract
COPY operator ./operator
COPY runtime ./runtime
COPY hack ./hack
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
  && rm -rf /root/.npm /tmp/*
COPY --from=build /src/dist /app/dist
# Nothing under /app is writable by the runtime user.
USER 65532:65532
ENV HOME=/tmp
LABEL org.opencontainers.image.title="cj-operator" \
      org.opencontainers.image.description="Comparative Judgement of student essays as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["node"]
CMD ["/app/dist/operator/src/main.js"]
