# safeguard: multi-stage build. The build stage runs the same cargo command as CI
# (`cargo build --release --locked --bin safeguard`, see .ci/run), so what CI tests is what ships.

# ---- build --------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependencies first: this layer is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
# The bundled SQLite's build flags (.cargo/config.toml).
COPY .cargo .cargo
COPY migrations/Cargo.toml migrations/Cargo.toml
RUN mkdir -p src benches migrations/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs migrations/src/lib.rs \
 && echo 'fn main() {}' > benches/decide.rs && echo 'fn main() {}' > benches/load.rs \
 && echo 'fn main() {}' > build.rs \
 && cargo build --release --locked --bin safeguard \
 && rm -rf src benches migrations/src build.rs target/release/.fingerprint/safeguard-* target/release/.fingerprint/migrations-*

# Then the service itself.
COPY build.rs ./
COPY proto proto
COPY policy policy
COPY migrations migrations
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin safeguard \
 && install -D target/release/safeguard /out/safeguard

# ---- runtime ------------------------------------------------------------------------------------
# distroless: glibc and CA certificates, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/safeguard /usr/local/bin/safeguard
WORKDIR /var/lib/safeguard
ENV SAFEGUARD__SERVER__LISTEN_ADDR=0.0.0.0:50051 \
    SAFEGUARD__METRICS__LISTEN_ADDR=0.0.0.0:9464 \
    SAFEGUARD__LOG__FORMAT=json
USER nonroot
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/safeguard", "healthcheck", "--addr", "http://127.0.0.1:50051"]
ENTRYPOINT ["/usr/local/bin/safeguard"]
CMD ["serve"]
