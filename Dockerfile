# The pgward sidecar image: Node 20 + Debian's PostgreSQL 15. One image serves every
# shape: member (sidecar + PostgreSQL), witness and proxy-only; the config decides.
FROM node:20-bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-client-15 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    NODE_ENV=production

WORKDIR /opt/pgward
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY sql ./sql
COPY tsconfig.json ./
RUN ln -s /opt/pgward/bin/pgward.js /usr/local/bin/pgward \
 && mkdir -p /var/lib/pgward /etc/pgward \
 && chown postgres:postgres /var/lib/pgward

# PostgreSQL refuses to run as root; the sidecar runs as the postgres user, so
# PostgreSQL runs as the same user and owns its data directory.
USER postgres
VOLUME /var/lib/pgward

# proxy (read-write), proxy (read-only), Raft, admin API, PostgreSQL
EXPOSE 6432 6442 7400 8008 5432

HEALTHCHECK --interval=5s --timeout=2s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8008/health || exit 1

ENTRYPOINT ["pgward"]
CMD ["start", "--config", "/etc/pgward/pgward.yaml"]
