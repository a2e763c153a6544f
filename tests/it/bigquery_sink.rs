//! `gma serve --sink bigquery` against bqemulator (`BIGQUERY_EMULATOR_HOST`, started by
//! `.ci/emulators`): signed deliveries land as rows, a redelivery is stored once, `/healthz`
//! follows BigQuery.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use gma_pipeline::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse, Credentials};
use gma_pipeline::warehouse::{ParamValue, Params, Warehouse};
use gma_testkit::{Delivery, GmaServer};
use serde_json::{Value, json};

const SECRET: &str = "bigquery-secret";

fn gma() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gma"))
}

/// The emulator's address and a fresh dataset name.
fn emulator(test: &str) -> BigQueryConfig {
    let host = std::env::var("BIGQUERY_EMULATOR_HOST").unwrap_or_default();
    assert!(
        !host.trim().is_empty(),
        "BIGQUERY_EMULATOR_HOST is not set: this test needs bqemulator; start it with \
         `bash .ci/emulators` and export what it prints (or run the tests through `.ci/run`)"
    );
    let project =
        std::env::var("GMA_BQ_EMULATOR_PROJECT").unwrap_or_else(|_| "test-project".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    BigQueryConfig {
        project,
        dataset: format!("gma_it_{test}_{}_{nanos}", std::process::id()),
        endpoint: Some(host),
        credentials: Credentials::None,
        location: None,
        page_size: None,
    }
}

async fn start(config: &BigQueryConfig, dir: &Path) -> GmaServer {
    let endpoint = config.endpoint.clone().unwrap();
    GmaServer::start(
        gma(),
        &dir.join("data"),
        SECRET,
        &[
            "--sink",
            "bigquery",
            "--bigquery-project",
            &config.project,
            "--bigquery-dataset",
            &config.dataset,
            "--events-table",
            "webhook_events",
            "--bigquery-endpoint",
            &endpoint,
        ],
    )
    .await
}

#[tokio::test]
async fn serve_lands_deliveries_in_bigquery_once() {
    let config = emulator("serve");
    let dir = tempfile::tempdir().unwrap();
    let server = start(&config, dir.path()).await;
    let warehouse = BigQueryWarehouse::connect(config).unwrap();
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok", "sink": "bigquery"}));

    let fixtures = gma_testkit::fixtures();
    for (i, fixture) in fixtures.iter().enumerate() {
        let delivery = Delivery::json(
            &format!("bq-{i:03}"),
            &fixture.event,
            fixture.body.clone(),
            SECRET,
        );
        let (status, body) = delivery.send(&client, &server.base_url).await.unwrap();
        assert_eq!(
            status,
            201,
            "{}: {body}\n{}",
            fixture.path.display(),
            server.log()
        );
    }
    // GitHub's redelivery: same delivery id, same body.
    let again = Delivery::json(
        "bq-000",
        &fixtures[0].event,
        fixtures[0].body.clone(),
        SECRET,
    );
    let (status, body) = again.send(&client, &server.base_url).await.unwrap();
    assert_eq!((status, body), (200, json!({"status": "duplicate"})));
    // A bad signature lands nothing.
    let mut forged = Delivery::json("bq-forged", "push", b"{}".to_vec(), SECRET);
    forged.signature = Some(gma_testkit::sign("other", b"{}"));
    assert_eq!(forged.send(&client, &server.base_url).await.unwrap().0, 401);

    let result = warehouse
        .query(
            "SELECT delivery_id, event, payload, payload_size, repository, sender, \
             COUNT(*) OVER (PARTITION BY delivery_id) AS copies \
             FROM `${dataset}webhook_events` ORDER BY delivery_id",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(result.num_rows(), fixtures.len());
    let rows = arrow::compute::concat_batches(&result.schema, &result.batches).unwrap();
    let text = |name: &str, row: usize| {
        let column = rows.column_by_name(name).unwrap().as_string::<i32>();
        (!column.is_null(row)).then(|| column.value(row).to_owned())
    };
    let int = |name: &str, row: usize| {
        rows.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(row)
    };
    for (i, fixture) in fixtures.iter().enumerate() {
        assert_eq!(text("delivery_id", i).unwrap(), format!("bq-{i:03}"));
        assert_eq!(text("event", i).unwrap(), fixture.event);
        assert_eq!(
            text("payload", i).unwrap().as_bytes(),
            fixture.body.as_slice(),
            "{} is not byte-identical",
            fixture.path.display()
        );
        assert_eq!(int("payload_size", i), fixture.body.len() as i64);
        assert_eq!(int("copies", i), 1, "bq-{i:03} stored more than once");
        let payload: Value = serde_json::from_slice(&fixture.body).unwrap();
        let want = payload["repository"]["full_name"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(text("repository", i), want, "{}", fixture.path.display());
    }
    let one = warehouse
        .query(
            "SELECT COUNT(*) AS n FROM `${dataset}webhook_events` WHERE delivery_id = @id",
            &Params::new().with("id", ParamValue::String("bq-000".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        one.batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        1
    );

    // Without its dataset the sink cannot take events: /healthz says so, and a delivery gets
    // 503 (nothing stored, GitHub may redeliver) instead of a false 2xx.
    warehouse.delete_dataset().await.unwrap();
    let health = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let late = Delivery::json("bq-late", "ping", br#"{"zen":"x"}"#.to_vec(), SECRET);
    let (status, body) = late.send(&client, &server.base_url).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{body}"
    );
}
