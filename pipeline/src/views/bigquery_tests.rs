//! Every view on BigQuery's emulator (bqemulator) over the same events as on DataFusion, both
//! result sets compared row for row.

use super::local_tests::local_with;
use super::*;
use crate::testing::{emulator_config, events_batch, fixture_events, with_dataset};
use crate::warehouse::Warehouse;
use crate::warehouse::crosscheck_tests::rows;

#[tokio::test]
async fn every_view_gives_the_same_rows_on_bigquery_and_datafusion() {
    let (mut events, mut payloads) = fixture_events();
    let (_dir, local) = local_with(&events, &payloads).await;
    // BigQuery also gets a later copy of a delivery (a redelivery that the local store, which
    // keeps one row per delivery, refused): unique_events must keep the first one.
    let mut later = events[0].clone();
    later.received_micros += 1_000_000;
    events.push(later);
    payloads.push(payloads[0].clone());
    with_dataset(emulator_config("views"), |bigquery| async move {
        bigquery
            .append(&crate::sql::EVENTS, events_batch(&events, &payloads))
            .await
            .unwrap();
        let settings = ViewSettings::default().reading_payloads();
        bigquery
            .create_views(&settings, &VIEWS.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let mut differ = Vec::new();
        for view in VIEWS {
            let sql = format!("SELECT * FROM `${{dataset}}{}`", view.name);
            let mut on_bigquery = rows(&bigquery, &sql)
                .await
                .unwrap_or_else(|e| vec![vec![e.into()]]);
            let mut on_datafusion = rows(&local, &sql)
                .await
                .unwrap_or_else(|e| vec![vec![e.into()]]);
            on_bigquery.sort_by_key(|row| serde_json::to_string(row).unwrap());
            on_datafusion.sort_by_key(|row| serde_json::to_string(row).unwrap());
            if on_bigquery != on_datafusion {
                differ.push(format!(
                    "{}:\n  bigquery:   {}\n  datafusion: {}",
                    view.name,
                    serde_json::to_string(&on_bigquery).unwrap(),
                    serde_json::to_string(&on_datafusion).unwrap()
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    })
    .await;
}
