//! `gma serve`: load the secrets, open the sink (the local store or BigQuery), serve until
//! SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gma_ingest::secret::parse_secret_list;
use gma_ingest::{IngestConfig, WebhookSecret};
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
use gma_store::event_sink::EventSink;
use gma_store::{EventStore, StoreOptions};

use crate::cli::{ServeArgs, Sink};

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
    let sink = open_sink(&args).await?;
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
    gma_ingest::serve(listener, config, sink, crate::signals::shutdown_signal()).await?;
    Ok(())
}

/// The local store of --data-dir, or the BigQuery table the flags name.
async fn open_sink(args: &ServeArgs) -> Result<Arc<dyn EventSink>> {
    match args.sink {
        Sink::Local => {
            let options = StoreOptions {
                segment_max_bytes: args.segment_max_bytes,
                seal_after: Duration::from_secs(args.seal_after_secs.max(1)),
                ..StoreOptions::default()
            };
            let data_dir = args.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || EventStore::open(&data_dir, options))
                .await
                .context("opening the event store")??;
            Ok(Arc::new(store))
        }
        Sink::Bigquery => {
            let config = args.bigquery.sink_config(args.data_dir.join("spool"))?;
            let sink = BigQueryEventSink::connect(config)
                .await
                .context("connecting to BigQuery (--sink bigquery)")?;
            tracing::info!(
                warehouse = ?sink.warehouse(),
                table = %sink.table(),
                blob_store = args.bigquery.blob_store.as_deref().unwrap_or("(none)"),
                "Landing events in BigQuery."
            );
            Ok(Arc::new(sink))
        }
    }
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
