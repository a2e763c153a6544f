//! `gma serve`: load the secrets, open the sink (the local store or BigQuery), serve until
//! SIGTERM or SIGINT.

use std::time::Duration;

use anyhow::{Context, Result};
use gma_ingest::secret::parse_secret_list;
use gma_ingest::{IngestConfig, WebhookSecret};
use gma_store::StoreOptions;

use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::cli::ServeArgs;
use crate::views_refresh;

/// Runs the server.
pub async fn run(args: ServeArgs) -> Result<()> {
    let secrets = secrets(&args)?;
    let config = IngestConfig {
        secrets,
        max_body_bytes: args.max_body_bytes,
        body_timeout: Duration::from_secs(args.body_timeout_secs),
        max_concurrent_requests: args.max_concurrent_requests,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..IngestConfig::new(Vec::new())
    };
    gma_ingest::validate(&config)?;
    let store_options = StoreOptions {
        segment_max_bytes: args.segment_max_bytes,
        seal_after: Duration::from_secs(args.seal_after_secs.max(1)),
        ..StoreOptions::default()
    };
    let (sink, store) =
        backend::event_sink(args.sink, &args.bigquery, &args.data_dir, store_options).await?;
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!("listening on {address} (is another process using the port? set --port / PORT)")
        })?;
    let secret_ids: Vec<&str> = config.secrets.iter().map(WebhookSecret::id).collect();
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
        sink = sink.kind(),
        data_dir = %args.data_dir.display(),
        secrets = ?secret_ids,
        max_body_bytes = config.max_body_bytes,
        "Serving POST /webhook."
    );
    let stop_refresh = CancellationToken::new();
    let refresher = store.filter(|_| !args.no_refresh).map(|store| {
        tokio::spawn(views_refresh::serve_in_background(
            args.data_dir.clone(),
            store,
            stop_refresh.clone(),
        ))
    });
    let served = gma_ingest::serve(listener, config, sink, crate::signals::shutdown_signal()).await;
    stop_refresh.cancel();
    if let Some(refresher) = refresher {
        match refresher.await {
            Ok(Err(error)) => {
                tracing::warn!(error = %format!("{error:#}"), "The typed event tables were not kept current; run `gma views refresh`.")
            }
            Err(error) => tracing::warn!(%error, "The typed event tables' refresh stopped."),
            Ok(Ok(())) => {}
        }
    }
    served?;
    Ok(())
}

/// Every configured secret, from the single variable, the list and the file, in that order.
fn secrets(args: &ServeArgs) -> Result<Vec<WebhookSecret>> {
    let mut secrets = Vec::new();
    if let Some(secret) = args.webhook_secret.as_deref() {
        secrets.push(WebhookSecret::new("GITHUB_WEBHOOK_SECRET", secret.trim()));
    }
    if let Some(list) = args.webhook_secrets.as_deref() {
        secrets.extend(parse_secret_list("GMA_WEBHOOK_SECRETS", list));
    }
    if let Some(path) = &args.webhook_secrets_file {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("reading the webhook secrets file {} (--webhook-secrets-file / GMA_WEBHOOK_SECRETS_FILE)", path.display())
        })?;
        secrets.extend(parse_secret_list(&path.display().to_string(), &text));
    }
    Ok(secrets)
}
