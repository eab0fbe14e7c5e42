# The `traffic` binary in a small image. Build: docker build -t traffic .
FROM rust:1.89-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake zlib1g-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src src
COPY dataflows dataflows
# The dataflows package declares the end-to-end tests and examples as its targets.
COPY tests tests
COPY examples examples
RUN cargo build --release --bin traffic

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates zlib1g && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/traffic /usr/local/bin/traffic
COPY data /data
WORKDIR /work
ENTRYPOINT ["traffic"]
