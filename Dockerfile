# The gma image: one binary, run as `gma SUBCOMMAND` (Cloud Run passes serve, retry or leech).
#
#   docker build -t gma .
#   docker run --rm -p 8080:8080 -e GITHUB_WEBHOOK_SECRET=change-me -v gma-data:/data gma serve
#
# Build stage: a release build of the gma binary. The whole workspace is copied because cargo
# needs every member's manifest; .dockerignore keeps out what the build does not read. The image
# runs on Google Cloud, so it names the cloud features it needs (BigQuery as the sink and
# warehouse, GCS as a blob store) rather than relying on the default ones.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin gma --features bigquery,gcs \
 && install -D -m 0755 target/release/gma /out/gma \
 && mkdir -p /out/data

# Runtime stage: distroless (glibc, libgcc, CA certificates, no shell), as the unprivileged
# `nonroot` user (uid 65532). gma's only system needs are glibc and the CA bundle: TLS is
# rustls, and the C libraries it uses (zstd, lzma, aws-lc) are linked in statically.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gma /usr/local/bin/gma
# The data directory (the embedded store, and the spool of large bodies with --sink bigquery),
# writable by the user; mount a volume here to keep a local store.
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV GMA_DATA_DIR=/data
WORKDIR /data
USER nonroot:nonroot
# gma serve listens on PORT (Cloud Run sets it), 8080 by default.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gma"]
CMD ["serve"]
