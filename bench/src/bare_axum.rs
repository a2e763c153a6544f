//! Baseline server for the ingest benchmark.
//!
//! The cheapest possible webhook receiver built on the same stack as
//! `gma serve` (axum 0.8 on a multi-threaded tokio runtime): it reads the
//! whole request body and answers `200 {"status":"ok"}` without verifying,
//! parsing or storing anything. `gma serve`'s throughput is reported relative
//! to this server measured in the same run on the same machine.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Parser;

/// Largest body accepted; above gma's 25 MiB default so the `big` mode can be
/// run against this server too.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "bare-axum",
    about = "Baseline axum server: POST /webhook reads the body and answers 200"
)]
struct Args {
    /// TCP port to listen on (0 picks a free port; the bound address is printed).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    bind: Ipv4Addr,
}

async fn webhook(body: Bytes) -> impl IntoResponse {
    // The extractor has already read the entire body into memory.
    std::hint::black_box(body.len());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

fn app() -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::from((args.bind, args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    println!("bare-axum listening on http://{local}");
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}
