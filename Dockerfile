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
COPY infra/bundling.json ./infra/
COPY scripts/bundle-runner.mjs ./scripts/
COPY functions/ ./functions/

# Every functions/<name>/handler.ts and functions/dump/fargate-task.ts (the
# Fargate task's entrypoint) becomes dist/functions/<name>/<file>.mjs, bundled
# with infra/bundling.json, the settings of every shipped bundle (the Lambda
# functions CDK bundles too): keepNames, so error class names (the errorType
# Retry/Catch match) survive minifying, and every dependency inlined, so the
# runtime stage needs no node_modules, no tsx and no build tools. The tests
# run the same script and execute its output.
RUN node scripts/bundle-runner.mjs dist

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

# Only the bundles: self-contained (dependencies inlined), no sources, no
# node_modules, no package manager state.
COPY --from=build /build/dist/functions/ ./functions/

# The Node.js runtime resolves "functions/dump/handler" to handler.mjs (it
# tries .js, .mjs, .cjs).
CMD ["functions/dump/handler.handler"]
