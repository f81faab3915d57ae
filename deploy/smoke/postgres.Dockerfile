# syntax=docker/dockerfile:1
# A stand-in for postgres:17.6-alpine where no registry is reachable (make compose-smoke;
# docker-compose.smoke.yml picks it with RELAY_SMOKE_POSTGRES_IMAGE): Debian's PostgreSQL 15,
# the version the tests run against, honouring what docker-compose.yml uses of the official
# image: POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD, the data directory and pg_isready.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown postgres:postgres /var/lib/postgresql/data /run/postgresql
COPY --chmod=0755 postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
# hadolint ignore=DL3066
USER postgres
EXPOSE 5432
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["postgres-entrypoint"]
CMD ["postgres"]
