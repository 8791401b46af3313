# Sluice image for k8s/ and podman: every binary (sluice, sluice-gateway,
# sluice-broker, sluice-auth) on Debian 12 slim with only the runtime libraries,
# running as the unprivileged user 991:991 (numeric, so Kubernetes can verify
# runAsNonRoot). Build it with scripts/build-image.sh; tests/container/run.sh builds
# it and runs it against real Redis and PostgreSQL.
FROM debian:12 AS build
WORKDIR /src
# Build dependencies only (scripts/install-deps.sh also brings test servers and tools).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ccache \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libboost-dev libboost-system-dev libpqxx-dev libhiredis-dev nlohmann-json3-dev \
      libicu-dev libpcre2-dev libgumbo-dev liburing-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# Release build of the four binaries. The compiler cache lives in a build cache mount
# (kept by podman/buildah and BuildKit between builds, never in the image), so a
# rebuild after a source change only recompiles what changed. The build tree is
# removed in the same step, so the stage's layer holds only the four binaries.
ARG BUILD_JOBS=2
ENV CCACHE_DIR=/root/.cache/ccache
RUN --mount=type=cache,target=/root/.cache/ccache \
    ccache --max-size=2G >/dev/null && ccache --zero-stats >/dev/null \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /build -j "$BUILD_JOBS" --target sluice sluice-gateway sluice-broker sluice-auth \
 && ccache --show-stats \
 && install -m 0755 -s /build/bin/sluice /build/bin/sluice-gateway /build/bin/sluice-broker /build/bin/sluice-auth \
      /usr/local/bin/ \
 && rm -rf /build
# The runtime packages: the Debian packages holding every shared library the binaries
# load (ldd resolves the whole closure). Usr-merged paths are tried both ways; a
# library no package holds, or one ldd cannot find, fails the build.
RUN set -eu; \
    for binary in /usr/local/bin/sluice*; do ldd "$binary"; done > /tmp/ldd; \
    if grep 'not found' /tmp/ldd; then exit 1; fi; \
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' /tmp/ldd | sort -u > /tmp/libs; \
    : > /tmp/packages; \
    while read -r lib; do \
      real="$(readlink -f "$lib")"; package=""; \
      for candidate in "$lib" "$real" "/usr${lib#/usr}" "${lib#/usr}" "/usr${real#/usr}" "${real#/usr}"; do \
        package="$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1)" && [ -n "$package" ] && break; \
      done; \
      if [ -z "$package" ]; then echo "no Debian package holds $lib" >&2; exit 1; fi; \
      echo "$package" >> /tmp/packages; \
    done < /tmp/libs; \
    sort -u /tmp/packages > /runtime-packages; \
    echo "runtime packages:"; cat /runtime-packages

FROM debian:12-slim
# Exactly the Debian packages that hold the libraries the binaries link (computed in
# the build stage), plus CA certificates for TLS to PostgreSQL/Redis.
COPY --from=build /runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /var/cache/debconf/*-old /tmp/runtime-packages \
 && groupadd -g 991 sluice && useradd -u 991 -g 991 -M -d /nonexistent -s /usr/sbin/nologin sluice
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice-gateway /usr/local/bin/sluice-broker /usr/local/bin/sluice-auth /usr/local/bin/
# Every library resolves in the runtime image.
RUN for binary in /usr/local/bin/sluice*; do if ldd "$binary" | grep 'not found'; then exit 1; fi; done
USER 991:991
# Client port (PORT); gRPC of broker and auth; admin HTTP of gateway, broker, auth.
EXPOSE 4000 50051 50052 9090 9091 9092
# As Mastodon's streaming image: a container that swaps it in is reached on 0.0.0.0:4000.
ENV NODE_ENV=production BIND=0.0.0.0 PORT=4000
CMD ["/usr/local/bin/sluice"]
