# Postgres from Debian's package, for the kind e2e (hack/kind/deps.yaml). Runs as the package's
# `postgres` user; the data directory is created on first start (an emptyDir in the e2e).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* && ln -s /usr/lib/postgresql/*/bin /usr/lib/postgresql/bin
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/bin:$PATH PGDATA=/var/lib/postgresql/data/pgdata
USER postgres
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
