# syntax=docker/dockerfile:1.7
#
# Lambda container image for the dump/restore runner: Node.js 22 + the handler
# bundles + pg_dump/pg_restore + the RDS CA bundle.
#
# Build for Graviton (cheaper per GB-second; the base image is multi-arch):
#   docker buildx build --platform linux/arm64 --provenance=false -t lifeboat-runner .
# --provenance=false: Lambda rejects image indexes that carry buildx's
# attestation manifests ("image manifest media type not supported").
#
# One image serves every runner function; each sets its own handler through
# the function's ImageConfig.Command (CMD below is the dump handler).

# ---------------------------------------------------------------------------
# Build stage: bundle the TypeScript handlers with esbuild.
# --platform=$BUILDPLATFORM: the output is plain JavaScript, so bundle natively
# even when cross-building the arm64 image on an x86 machine (no emulation).
# ---------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
WORKDIR /build

COPY package.json package-lock.json ./
# Full install: esbuild and typescript are devDependencies.
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY functions/ ./functions/
COPY state-machines/ ./state-machines/

# Every functions/<name>/handler.ts (not the shared functions/lib) becomes
# dist/functions/<name>/handler.mjs, at the same relative path as its source;
# so does functions/dump/fargate-task.ts, the Fargate dump task's entrypoint
# (node functions/dump/fargate-task.mjs).
# --packages=external: dependencies stay in node_modules (installed in the
# runtime stage) instead of being inlined; pg's optional require('pg-native')
# and the AWS SDK's dynamic requires then behave exactly as under tsx in dev.
# .mjs: ESM regardless of any package.json "type" lookup.
RUN set -eu; \
    entries="$(find functions -path functions/lib -prune -o \( -name handler.ts -o -name fargate-task.ts \) -print | sort)"; \
    if [ -z "$entries" ]; then echo "no functions/*/handler.ts to bundle" >&2; exit 1; fi; \
    echo "$entries" | grep -qx functions/dump/fargate-task.ts || { echo "functions/dump/fargate-task.ts is missing: the Fargate dump task has no entrypoint" >&2; exit 1; }; \
    npx esbuild $entries \
      --bundle --platform=node --target=node22 --format=esm \
      --packages=external --sourcemap \
      --outbase=. --outdir=dist --out-extension:.js=.mjs

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/nodejs:22

# pg_dump refuses to dump a server newer than itself, and pg_restore cannot
# read archives from a newer pg_dump, so ship the newest client major: it
# dumps and restores every older server. PostgreSQL 18 is the current major
# (postgresql.org lists "Current (18)"); AL2023 packages it as postgresql18
# since release 2023.10.20260330, x86_64 and aarch64 (18.4-1.amzn2023.0.1 at
# the time of writing; amazonlinux/amazon-linux-2023 issues #1031 and #1112).
# Bump PG_MAJOR when a newer major is packaged.
# It installs from the distribution's own repo; no third-party (PGDG) repo
# and no $releasever workaround. If dnf says "No match", the cached base
# image predates 2023.10: build with --pull.
# The base image's dnf is microdnf; the postgresqlNN package is the client
# only (psql, pg_dump, pg_restore, pg_dumpall), no server.
ARG PG_MAJOR=18
RUN dnf install -y postgresql${PG_MAJOR} \
 && dnf clean all \
 && rm -rf /var/cache/dnf /var/cache/yum

# Amazon's RDS/Aurora CA bundle (every region, current and next CAs), so
# sslmode=verify-full works. Lambda runs as an unprivileged user: 0644, or it
# cannot read it. Not checksum-pinned: AWS adds CAs to this file over time.
ADD --chmod=0644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /opt/rds-ca/global-bundle.pem
# PGSSLROOTCERT is read by libpq (pg_dump, pg_restore, psql). Node's TLS (the
# `pg` driver) ignores it; NODE_EXTRA_CA_CERTS adds the same CAs to Node's
# trust store at process start.
ENV PGSSLROOTCERT=/opt/rds-ca/global-bundle.pem \
    NODE_EXTRA_CA_CERTS=/opt/rds-ca/global-bundle.pem \
    NODE_OPTIONS=--enable-source-maps

# Fail the build, not the first 3 a.m. backup, if the tools or the CA are wrong.
RUN pg_dump --version | grep -Eq "\(PostgreSQL\) ${PG_MAJOR}(\.|$)" \
 && pg_restore --version | grep -Eq "\(PostgreSQL\) ${PG_MAJOR}(\.|$)" \
 && grep -q 'BEGIN CERTIFICATE' /opt/rds-ca/global-bundle.pem

WORKDIR ${LAMBDA_TASK_ROOT}

# Dependencies first, so a code change does not re-run npm ci.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# The sources come along for the files code reads at run time relative to
# itself (JSON, SQL). Caveat: inside a bundle, import.meta.url is the bundle's
# URL (functions/<name>/handler.mjs), not the original module's, so such
# lookups must resolve from the handler's directory or from LAMBDA_TASK_ROOT.
COPY functions/ ./functions/
COPY state-machines/ ./state-machines/
COPY --from=build /build/dist/functions/ ./functions/

# The Node.js runtime resolves "functions/dump/handler" to handler.mjs (it
# tries .js, .mjs, .cjs; the .ts source next to it is ignored).
CMD ["functions/dump/handler.handler"]
