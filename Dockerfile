# syntax=docker/dockerfile:1
# Both binaries, k8s-version-check (the detector) and k8s-upgrade (the
# orchestrator and its CLI), in one small image that runs as a non-root user.
#
#   docker build -t ghcr.io/example/k8s-upgrade:0.1.0 .
#
# The Swift runtime is linked statically (--static-swift-stdlib); the
# runtime image needs only libcurl, libssh2, SQLite and CA certificates.

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4-openssl-dev libssh2-1-dev libsqlite3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product k8s-version-check \
 && swift build -c release --static-swift-stdlib --product k8s-upgrade \
 && mkdir -p /out \
 && cp "$(swift build -c release --show-bin-path)/k8s-version-check" \
       "$(swift build -c release --show-bin-path)/k8s-upgrade" /out/ \
 && strip /out/*

# etcd, etcdutl and etcdctl for the restore rehearsal of each copied snapshot
# (--restore-rehearsal): the release's tarball, checked against the
# release's SHA256SUMS. Keep it at the etcd minor the clusters run (or newer).
FROM debian:bookworm-slim AS etcd
ARG ETCD_VERSION=v3.6.5
ARG TARGETARCH=amd64
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && cd /tmp \
 && base="https://github.com/etcd-io/etcd/releases/download/${ETCD_VERSION}" \
 && name="etcd-${ETCD_VERSION}-linux-${TARGETARCH}" \
 && curl -fsSLO "${base}/${name}.tar.gz" && curl -fsSLO "${base}/SHA256SUMS" \
 && grep " ${name}.tar.gz\$" SHA256SUMS | sha256sum -c - \
 && tar -xzf "${name}.tar.gz" \
 && mkdir /out && cp "${name}/etcd" "${name}/etcdutl" "${name}/etcdctl" /out/

# sqlite3: the restore rehearsal of a K3s server's SQLite copy; tzdata: the time zones of maintenance windows.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 libssh2-1 libsqlite3-0 ca-certificates sqlite3 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 k8s-upgrade \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin k8s-upgrade
COPY --from=build /out/k8s-version-check /out/k8s-upgrade /usr/local/bin/
COPY --from=etcd /out/etcd /out/etcdutl /out/etcdctl /usr/local/bin/
COPY scripts/update_k8s.sh /usr/share/k8s-upgrade/update_k8s.sh
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/k8s-upgrade"]
CMD ["serve"]
