# syntax=docker/dockerfile:1
# A stand-in for redis:7.4.6-alpine where no registry is reachable (make compose-smoke;
# docker-compose.smoke.yml picks it with RELAY_SMOKE_REDIS_IMAGE): Debian's Redis 7.0, the
# version the tests run against. As in the official image, a `redis-server` command without a
# configuration file runs with protected mode off, so other containers may connect.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 redis-entrypoint.sh /usr/local/bin/redis-entrypoint
# hadolint ignore=DL3066
USER redis
WORKDIR /var/lib/redis
EXPOSE 6379
ENTRYPOINT ["redis-entrypoint"]
CMD ["redis-server"]
