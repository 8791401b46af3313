# Sluice image for k8s/ and podman: every binary (sluice, sluice-gateway,
# sluice-broker, sluice-auth) on Debian 12 slim with only the runtime libraries,
# running as the unprivileged user 991:991 (numeric, so Kubernetes can verify
# runAsNonRoot). Build it with scripts/build-image.sh.
FROM debian:12 AS build
WORKDIR /src
# Build dependencies only (scripts/install-deps.sh also brings test servers and tools).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libboost-dev libboost-system-dev libpqxx-dev libhiredis-dev nlohmann-json3-dev \
      libicu-dev libpcre2-dev libgumbo-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
 && cmake --build /build --target sluice sluice-gateway sluice-broker sluice-auth \
 && install -m 0755 -s /build/bin/sluice /build/bin/sluice-gateway /build/bin/sluice-broker /build/bin/sluice-auth \
      /usr/local/bin/ \
 && for binary in /usr/local/bin/sluice*; do ldd "$binary"; done \
      | awk '$3 ~ /^\// {print $3}' | sort -u \
      | while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"; done \
      | cut -d: -f1 | sort -u > /runtime-packages \
 && cat /runtime-packages

FROM debian:12-slim
# Exactly the Debian packages that hold the libraries the binaries link (computed in
# the build stage), plus CA certificates for TLS to PostgreSQL/Redis.
COPY --from=build /runtime-packages /tmp/runtime-packages
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/* /var/log/apt /var/log/dpkg.log /tmp/runtime-packages \
 && groupadd -g 991 sluice && useradd -u 991 -g 991 -M -d /nonexistent -s /usr/sbin/nologin sluice
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice-gateway /usr/local/bin/sluice-broker /usr/local/bin/sluice-auth /usr/local/bin/
USER 991:991
# Client port (PORT); gRPC of broker and auth; admin HTTP of gateway, broker, auth.
EXPOSE 4000 50051 50052 9090 9091 9092
ENV NODE_ENV=production
CMD ["/usr/local/bin/sluice"]
