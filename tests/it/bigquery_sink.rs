//! `gma serve --sink bigquery` against bqemulator (`BIGQUERY_EMULATOR_HOST`, started by
//! `.ci/emulators`): signed deliveries land as rows, a redelivery is stored once, `/healthz`
//! follows BigQuery.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use gma_pipeline::testing::emulator_config;
use gma_pipeline::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};
use gma_pipeline::warehouse::{ParamValue, Params, Warehouse};
use gma_testkit::{Delivery, GmaServer};
use serde_json::{Value, json};

use crate::support::gma;

const SECRET: &str = "bigquery-secret";

async fn start(config: &BigQueryConfig, dir: &Path, extra: &[&str]) -> GmaServer {
    let endpoint = config.endpoint.clone().unwrap();
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    GmaServer::start(gma(), &dir.join("data"), SECRET, &args).await
}

/// A JSON object of about `bytes` bytes whose string holds `filler` repeated.
fn big_payload(bytes: usize, filler: &str) -> Vec<u8> {
    let pad = filler.repeat(bytes / filler.len());
    format!(r#"{{"action":"big","sender":{{"login":"octocat","id":1}},"pad":"{pad}"}}"#)
        .into_bytes()
}

#[tokio::test]
async fn serve_lands_deliveries_in_bigquery_once() {
    let config = emulator_config("serve");
    let dir = tempfile::tempdir().unwrap();
    let server = start(&config, dir.path(), &[]).await;
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

    // Too large for a row, and no blob store to put it in: refused, nothing stored.
    let big = Delivery::json("bq-big", "push", big_payload(9 << 20, "x"), SECRET);
    let (status, body) = big.send(&client, &server.base_url).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--blob-store"),
        "{body}"
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

#[tokio::test]
async fn payloads_too_large_for_a_row_go_to_the_blob_store() {
    let config = emulator_config("blobs");
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let blob_arg = blobs.to_str().unwrap().to_owned();
    let server = start(&config, dir.path(), &["--blob-store", &blob_arg]).await;
    let warehouse = BigQueryWarehouse::connect(config).unwrap();
    let client = reqwest::Client::new();

    // Over 8 MiB; and under it, but with so many quotes that its escaped JSON would not fit.
    let large = big_payload(9 << 20, "x");
    let quoted = big_payload(5 << 20, "\\\"");
    let small = br#"{"action":"small"}"#.to_vec();
    for (id, body) in [("large", &large), ("quoted", &quoted), ("small", &small)] {
        let delivery = Delivery::json(id, "push", body.clone(), SECRET);
        let (status, answer) = delivery.send(&client, &server.base_url).await.unwrap();
        assert_eq!(status, 201, "{id}: {answer}\n{}", server.log());
    }
    let result = warehouse
        .query(
            "SELECT delivery_id, payload, payload_uri, payload_sha256, payload_size, action \
             FROM `${dataset}webhook_events` ORDER BY delivery_id",
            &Params::new(),
        )
        .await
        .unwrap();
    let rows = arrow::compute::concat_batches(&result.schema, &result.batches).unwrap();
    let text = |name: &str, row: usize| {
        let column = rows.column_by_name(name).unwrap().as_string::<i32>();
        (!column.is_null(row)).then(|| column.value(row).to_owned())
    };
    let ids: Vec<_> = (0..rows.num_rows())
        .map(|i| text("delivery_id", i).unwrap())
        .collect();
    assert_eq!(ids, ["large", "quoted", "small"]);
    for (row, body) in [(0, &large), (1, &quoted)] {
        assert_eq!(text("payload", row), None, "{}", ids[row]);
        assert_eq!(text("action", row).as_deref(), Some("big"));
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        assert_eq!(text("payload_sha256", row).unwrap(), sha256);
        let uri = text("payload_uri", row).unwrap();
        assert!(
            uri.starts_with("file://") && uri.ends_with(&format!("{sha256}.json")),
            "{uri}"
        );
        let stored = std::fs::read(blobs.join("payloads").join(format!("{sha256}.json"))).unwrap();
        assert!(
            stored == *body,
            "the blob of {} differs from the payload",
            ids[row]
        );
        let size = rows.column_by_name("payload_size").unwrap();
        assert_eq!(
            size.as_primitive::<Int64Type>().value(row),
            body.len() as i64
        );
    }
    assert_eq!(text("payload", 2).unwrap().as_bytes(), small.as_slice());
    assert_eq!(text("payload_uri", 2), None);
    warehouse.delete_dataset().await.unwrap();
}
