# Multi-stage build: compile with the Rust toolchain, ship the binary alone on a small Debian.
#   docker build -t tgwatch .
#   docker run -d -p 8080:8080 -v tgwatch-data:/var/lib/tgwatch \
#     -e TGWATCH_HTTP__ADMIN_TOKEN=$(openssl rand -hex 24) tgwatch
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Without the default `sandbox` feature: the service alone, no fake Telegram, demo or benchmarks.
RUN cargo build --release --locked --no-default-features --bin tgwatch \
 && strip target/release/tgwatch

FROM debian:bookworm-slim
# ca-certificates: TLS to Telegram's bot API and to webhook endpoints; curl: the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/tgwatch --create-home tgwatch \
 && chmod 0700 /var/lib/tgwatch
COPY --from=build /src/target/release/tgwatch /usr/local/bin/tgwatch
COPY config.toml /etc/tgwatch/config.toml
# The database and the master key file live on the volume; secrets come from the environment.
ENV TGWATCH_DATABASE__URL="sqlite:///var/lib/tgwatch/tgwatch.db?mode=rwc" \
    TGWATCH_SECURITY__MASTER_KEY_FILE="/var/lib/tgwatch/tgwatch.key" \
    TGWATCH_HTTP__BIND="0.0.0.0:8080"
VOLUME ["/var/lib/tgwatch"]
WORKDIR /var/lib/tgwatch
USER tgwatch
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl --fail --silent --output /dev/null http://127.0.0.1:8080/livez || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tgwatch"]
CMD ["run", "--config", "/etc/tgwatch/config.toml"]
