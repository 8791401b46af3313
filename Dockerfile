# Sluice image for k8s/: every binary (sluice, sluice-gateway, sluice-broker,
# sluice-auth) on Debian 12 with only the runtime libraries.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN apt-get update -qq && scripts/install-deps.sh
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
 && cmake --build /build \
 && install -m 0755 /build/bin/sluice /build/bin/sluice-gateway /build/bin/sluice-broker /build/bin/sluice-auth \
      /usr/local/bin/

FROM debian:12-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libpqxx-6.4 libhiredis0.14 libicu72 libpcre2-8-0 libgumbo1 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 991 sluice && useradd -u 991 -g 991 -M -s /usr/sbin/nologin sluice
COPY --from=build /usr/local/bin/sluice* /usr/local/bin/
USER 991:991
EXPOSE 4000
CMD ["/usr/local/bin/sluice"]
