//! Where a [`super::BigQueryWarehouse`] connects and how it authenticates.

use std::path::PathBuf;

/// The environment variable an emulator's address is read from (`host:port`), the name the
/// Google client libraries use too.
pub const EMULATOR_HOST_VAR: &str = "BIGQUERY_EMULATOR_HOST";

/// Google's BigQuery REST endpoint (without the `/bigquery/v2` path).
pub const GOOGLE_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// How requests prove who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A service account's JSON key file.
    ServiceAccountKeyFile(PathBuf),
    /// Application default credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
    /// `application-default login`, or the metadata server on Cloud Run and GCE.
    ApplicationDefault,
    /// No credentials: an emulator, which accepts anonymous requests.
    None,
}

/// Where a BigQuery warehouse lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryConfig {
    /// The Google Cloud project that holds the dataset and runs the query jobs.
    pub project: String,
    /// The dataset gma's tables live in.
    pub dataset: String,
    /// The REST endpoint: `None` for Google, or an emulator's URL (`http://127.0.0.1:9050`, or
    /// `host:port`, taken as `http://host:port`).
    pub endpoint: Option<String>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The location (`US`, `EU`, `europe-west1`, ...) datasets are created in and jobs run in;
    /// `None` lets BigQuery choose (the dataset's location for queries, `US` for new datasets).
    pub location: Option<String>,
    /// Rows per result page (`maxResults`); `None` lets BigQuery choose (about 10 MB a page).
    pub page_size: Option<u32>,
}

impl BigQueryConfig {
    /// A configuration for `project.dataset` on Google with application default credentials,
    /// unless `BIGQUERY_EMULATOR_HOST` is set: then the emulator, without credentials.
    pub fn new(project: impl Into<String>, dataset: impl Into<String>) -> Self {
        let endpoint = std::env::var(EMULATOR_HOST_VAR)
            .ok()
            .filter(|host| !host.trim().is_empty());
        let credentials = if endpoint.is_some() {
            Credentials::None
        } else {
            Credentials::ApplicationDefault
        };
        Self {
            project: project.into(),
            dataset: dataset.into(),
            endpoint,
            credentials,
            location: None,
            page_size: None,
        }
    }

    /// The base URL of the REST API, `.../bigquery/v2`, without a trailing slash.
    pub fn api_base(&self) -> String {
        let endpoint = match self.endpoint.as_deref().map(str::trim) {
            None | Some("") => GOOGLE_ENDPOINT.to_owned(),
            Some(url) if url.contains("://") => url.trim_end_matches('/').to_owned(),
            Some(host) => format!("http://{}", host.trim_end_matches('/')),
        };
        format!("{endpoint}/bigquery/v2")
    }

    /// What `${dataset}` resolves to in SQL: `project.dataset.`, inside the backticks the SQL
    /// files put around every table name, so `` `${dataset}events` `` becomes the fully
    /// qualified `` `project.dataset.events` `` (a project id may hold dashes, which only a
    /// quoted name allows). Names are fully qualified because the emulator ignores
    /// `defaultDataset`.
    pub fn table_prefix(&self) -> String {
        crate::sql::bigquery_prefix(&self.project, &self.dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>) -> BigQueryConfig {
        BigQueryConfig {
            project: "my-proj".into(),
            dataset: "gma".into(),
            endpoint: endpoint.map(str::to_owned),
            credentials: Credentials::None,
            location: None,
            page_size: None,
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            config(None).api_base(),
            "https://bigquery.googleapis.com/bigquery/v2"
        );
        assert_eq!(
            config(Some("127.0.0.1:9050")).api_base(),
            "http://127.0.0.1:9050/bigquery/v2"
        );
        assert_eq!(
            config(Some("https://bq.example/")).api_base(),
            "https://bq.example/bigquery/v2"
        );
    }

    #[test]
    fn dataset_placeholder_is_fully_qualified() {
        let sql = crate::sql::resolve(crate::sql::EVENTS_DDL, &config(None).table_prefix());
        assert!(sql.contains("`my-proj.gma.events`"), "{sql}");
    }
}
