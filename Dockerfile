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
#
# Nothing can be built here without Docker; test/infra/runner-image.test.ts
# checks this file against the TypeScript it must agree with (client majors,
# discovery root, pins) and runs its client check against fake clients.

# ---------------------------------------------------------------------------
# Pinned inputs (docs/deployment.md, "Pinned build inputs").
#
# Base images: each *_DIGEST is the digest of its tag's image index (the
# multi-arch one: the build stage runs on the build platform, the others on
# arm64), e.g.
#   docker buildx imagetools inspect public.ecr.aws/lambda/nodejs:22 --format '{{json .Manifest.Digest}}'
# NOT PINNED YET: no digest could be verified where this was written (no
# registry access), so all three are empty and the tags below are pulled as
# they are. Set all three (sha256:<64 hex>) before a release; a set digest is
# checked by the registry on pull, so the build cannot silently change.
ARG NODE_BUILD_DIGEST=
ARG AL2023_DIGEST=
ARG LAMBDA_NODEJS_DIGEST=
# The PostgreSQL client majors the image ships, one directory each; must equal
# SUPPORTED_CLIENT_MAJORS in functions/lib/pg/binaries.ts (a test checks).
ARG PG_MAJORS="15 16 17 18"
# sha256 of https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem.
# REQUIRED: the build fails until it is set (ADD --checksum), and fails again
# when AWS changes the bundle (it adds CAs over time). To set or update it,
# fetch the bundle, check it (openssl x509 on each certificate, compare with
# the RDS documentation's CA list), then put its sha256 here:
#   curl -fsS https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem | sha256sum
ARG RDS_CA_BUNDLE_SHA256=

# ---------------------------------------------------------------------------
# Build stage: bundle the TypeScript handlers with esbuild.
# --platform=$BUILDPLATFORM: the output is plain JavaScript, so bundle natively
# even when cross-building the arm64 image on an x86 machine (no emulation).
# ---------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim${NODE_BUILD_DIGEST:+@${NODE_BUILD_DIGEST}} AS build
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
# PostgreSQL clients, one directory per major: /opt/postgresql/<major>/{bin,lib}.
# pg_dump refuses servers newer than itself and an archive needs a pg_restore
# at least as new as its pg_dump, but pg_restore 17+ sends SET
# transaction_timeout, which servers 16 and older reject; so the runner dumps
# each server with the client of its own major and restores with one the
# target accepts (functions/lib/pg/tools.ts), and needs every major.
# Amazon Linux 2023 packages each major as postgresqlNN, x86_64 and aarch64:
# 15 from the start, 16 (already at 16.8 in 2023.7.20250331), 17 since
# 2023.7.20250331, 18 since 2023.10.20260330. They conflict with each other
# (each owns /usr/bin/pg_dump, psql, ...), so they cannot be installed side by
# side. Each major's client and its private libpq (libpq.so.private<NN>-5, a
# soname of its own per major) are downloaded, signature-checked and unpacked
# instead, on the target platform and distribution.
# ---------------------------------------------------------------------------
FROM public.ecr.aws/amazonlinux/amazonlinux:2023${AL2023_DIGEST:+@${AL2023_DIGEST}} AS pgclients
ARG PG_MAJORS
RUN dnf install -y dnf-plugins-core cpio \
 && rpm --import /etc/pki/rpm-gpg/RPM-GPG-KEY-amazon-linux-2023* \
 && for m in ${PG_MAJORS}; do \
      mkdir -p "/tmp/rpms/$m" "/tmp/unpacked/$m" "/opt/postgresql/$m/bin" "/opt/postgresql/$m/lib" \
      && (cd "/tmp/rpms/$m" && dnf download -q "postgresql$m" "postgresql$m-private-libs") \
      && rpm -K "/tmp/rpms/$m"/*.rpm \
      && for r in "/tmp/rpms/$m"/*.rpm; do (cd "/tmp/unpacked/$m" && rpm2cpio "$r" | cpio -idm --quiet) || exit 1; done \
      && for t in pg_dump pg_restore pg_dumpall psql; do cp -p "/tmp/unpacked/$m/usr/bin/$t" "/opt/postgresql/$m/bin/" || exit 1; done \
      && cp -a "/tmp/unpacked/$m/usr/lib64/"libpq.so.private* "/opt/postgresql/$m/lib/" \
      || { echo "could not unpack the PostgreSQL $m client (postgresql$m, postgresql$m-private-libs)" >&2; exit 1; }; \
    done \
 && dnf clean all

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/nodejs:22${LAMBDA_NODEJS_DIGEST:+@${LAMBDA_NODEJS_DIGEST}}
ARG PG_MAJORS
ARG RDS_CA_BUNDLE_SHA256

# The libraries the clients link (OpenSSL, zstd, lz4, krb5, LDAP, readline):
# installing the newest major's package lets dnf resolve them (every major is
# built against the same distribution's libraries), and leaves that client in
# /usr/bin for break-glass use. The base image's dnf is microdnf; postgresqlNN
# is the client only (psql, pg_dump, pg_restore, pg_dumpall), no server. If dnf
# says "No match", the cached base image predates the package: build with --pull.
RUN dnf install -y "postgresql${PG_MAJORS##* }" \
 && dnf clean all \
 && rm -rf /var/cache/dnf /var/cache/yum

# One layout for every major; lifeboat finds them through LIFEBOAT_PG_CLIENTS
# (functions/lib/pg/binaries.ts IMAGE_CLIENTS_ROOT). The private libpqs have a
# soname per major, so one loader configuration serves them all.
COPY --from=pgclients /opt/postgresql/ /opt/postgresql/
RUN for m in ${PG_MAJORS}; do echo "/opt/postgresql/$m/lib"; done > /etc/ld.so.conf.d/lifeboat-postgresql.conf \
 && ldconfig
ENV LIFEBOAT_PG_CLIENTS=/opt/postgresql

# Fail the build, not the first 3 a.m. backup: every major must run (its
# libraries resolve) and report its own major.
RUN for m in ${PG_MAJORS}; do \
      for t in pg_dump pg_restore; do \
        out="$("${LIFEBOAT_PG_CLIENTS}/$m/bin/$t" --version)" || { echo "$t of PostgreSQL $m does not run (see above)" >&2; exit 1; }; \
        echo "$out" | grep -Eq "^$t \(PostgreSQL\) $m([.]|\$| )" || { echo "${LIFEBOAT_PG_CLIENTS}/$m/bin/$t reports \"$out\", not PostgreSQL $m" >&2; exit 1; }; \
        echo "$out"; \
      done; \
    done

# Amazon's RDS/Aurora CA bundle (every region, current and next CAs), so
# sslmode=verify-full works: a trust anchor, so it is checked against
# RDS_CA_BUNDLE_SHA256 (see the top of this file) before it enters the image.
# Lambda runs as an unprivileged user: 0644, or it cannot read it.
ADD --checksum=sha256:${RDS_CA_BUNDLE_SHA256} --chmod=0644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /opt/rds-ca/global-bundle.pem
# PGSSLROOTCERT is read by libpq (pg_dump, pg_restore, psql). Node's TLS (the
# `pg` driver) ignores it; NODE_EXTRA_CA_CERTS adds the same CAs to Node's
# trust store at process start.
ENV PGSSLROOTCERT=/opt/rds-ca/global-bundle.pem \
    NODE_EXTRA_CA_CERTS=/opt/rds-ca/global-bundle.pem \
    NODE_OPTIONS=--enable-source-maps

RUN grep -q 'BEGIN CERTIFICATE' /opt/rds-ca/global-bundle.pem

WORKDIR ${LAMBDA_TASK_ROOT}

# Only the bundles: self-contained (dependencies inlined), no sources, no
# node_modules, no package manager state.
COPY --from=build /build/dist/functions/ ./functions/

# The Node.js runtime resolves "functions/dump/handler" to handler.mjs (it
# tries .js, .mjs, .cjs).
CMD ["functions/dump/handler.handler"]
