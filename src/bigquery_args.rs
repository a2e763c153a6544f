//! The BigQuery flags of gma's commands turned into a dataset's names, and (in a build with the
//! cargo feature `bigquery`) a warehouse's or a sink's configuration.

use anyhow::{Result, bail};

use crate::cli::BigQueryArgs;

impl BigQueryArgs {
    /// The Google Cloud project: --bigquery-project (PROJECT_ID), else BIG_QUERY_PROJECT_ID.
    pub fn project(&self) -> Result<String> {
        let project = self
            .bigquery_project
            .clone()
            .or_else(|| std::env::var("BIG_QUERY_PROJECT_ID").ok())
            .filter(|p| !p.trim().is_empty());
        let Some(project) = project else {
            bail!(
                "BigQuery needs the project: set --bigquery-project (PROJECT_ID or BIG_QUERY_PROJECT_ID)"
            );
        };
        Ok(project)
    }

    /// The dataset: --bigquery-dataset (DATASET_ID).
    pub fn dataset(&self) -> Result<String> {
        let Some(dataset) = self
            .bigquery_dataset
            .clone()
            .filter(|d| !d.trim().is_empty())
        else {
            bail!("BigQuery needs the dataset: set --bigquery-dataset (DATASET_ID)");
        };
        Ok(dataset)
    }
}

#[cfg(feature = "bigquery")]
mod config {
    use std::path::PathBuf;

    use anyhow::{Context, Result};
    use gma_pipeline::blob::open_blob_store;
    use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSinkConfig;
    use gma_pipeline::warehouse::bigquery::{BigQueryConfig, Credentials};

    use crate::cli::BigQueryArgs;

    impl BigQueryArgs {
        /// The configuration of the BigQuery dataset these flags name.
        pub fn warehouse_config(&self) -> Result<BigQueryConfig> {
            let project = self.project()?;
            let dataset = self.dataset()?;
            let endpoint = self
                .bigquery_endpoint
                .clone()
                .filter(|e| !e.trim().is_empty());
            let credentials = match (&endpoint, &self.bigquery_key_file) {
                (Some(_), _) => Credentials::None,
                (None, Some(key)) => Credentials::ServiceAccountKeyFile(key.clone()),
                (None, None) => Credentials::ApplicationDefault,
            };
            Ok(BigQueryConfig {
                project,
                dataset,
                endpoint,
                credentials,
                location: self.bigquery_location.clone(),
                page_size: None,
            })
        }

        /// The configuration of a BigQuery events sink spooling large bodies in `spool_dir`.
        pub fn sink_config(&self, spool_dir: PathBuf) -> Result<BigQueryEventSinkConfig> {
            Ok(BigQueryEventSinkConfig {
                warehouse: self.warehouse_config()?,
                events_table: self.events_table.clone(),
                spool_dir,
                blobs: match self.blob_store.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(location) => Some(open_blob_store(location).with_context(|| {
                        format!("opening the blob store {location} (--blob-store / GMA_BLOB_STORE)")
                    })?),
                },
            })
        }
    }
}
