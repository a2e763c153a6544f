//! The BigQuery backend of [`Warehouse`]: Google BigQuery, or its emulator, over REST.
//!
//! - **Queries** run as `jobs.query` with named `queryParameters`, wait for the job, then page
//!   through `getQueryResults` with `pageToken`; each page becomes one Arrow `RecordBatch` typed
//!   by the result schema ([`rows`]). A retried `jobs.query` carries the same `requestId`, so it
//!   never runs the statement twice.
//! - **Tables** are created with `tables.insert` from the layout of their `sql/` DDL (modes,
//!   descriptions, DAY partitioning on the column, clustering); the dataset too. 409 = exists.
//! - **Appends** are streaming inserts (`insertAll`), at most 500 rows and about 5 MB a request,
//!   each row with a stable `insertId` (the SHA-256 of the row's JSON, or a column such as the
//!   delivery id), so a retried append is deduplicated by BigQuery (best effort, for about a
//!   minute). Refused rows are [`WarehouseError::RowsRefused`].
//!
//! **Why plain REST (reqwest) and not `gcp-bigquery-client`'s typed API:** the typed calls turn
//! every non-2xx into an error before the status can be judged for a retry and fail to decode a
//! non-JSON error page; they would still need the 200-with-`errors` check the emulator makes
//! necessary; and the typed row values (`TableCell` with `serde_json::Value`) gain nothing over
//! reading the JSON directly into Arrow. Credentials come from Google's `google-cloud-auth`
//! ([`auth`]), which knows every credential kind of a deployment. The Storage Write API
//! (gRPC) would write faster, but its endpoint cannot point at an emulator; `insertAll` is
//! enough for webhook rates and imports.
//!
//! Emulator (bqemulator) differences this module absorbs: query errors arrive as HTTP 200 with
//! `errors`; TIMESTAMPs come back as int64 µs (so we always ask for `useInt64Timestamp`);
//! `defaultDataset` is ignored (so `${dataset}` resolves to `project.dataset.`); numeric
//! timestamps in insertAll are misread (so we send RFC 3339 strings). It does **not** honour
//! `insertId`: a re-append of the same rows stores them again there, while BigQuery drops them.

mod auth;
mod client;
pub mod config;
pub mod event_sink;
mod rows;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use config::{BigQueryConfig, Credentials};

use self::client::{Rest, job_failure, remote};
use self::rows::BqField;
use super::ddl::TableLayout;
use super::{BatchStream, Params, QueryResult, ReadyTables, TableDef, Warehouse, WarehouseError};

/// Most rows one insertAll request carries (BigQuery's recommendation).
const MAX_ROWS_PER_INSERT: usize = 500;
/// The request size an insertAll batch is cut at, well under BigQuery's 10 MB limit. A single
/// larger row still goes alone.
const MAX_BYTES_PER_INSERT: usize = 5 * 1024 * 1024;
/// How long one jobs.query or getQueryResults call waits for the job before answering.
const JOB_WAIT_MS: u64 = 10_000;

/// How each inserted row's `insertId` is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertIds<'a> {
    /// The hex SHA-256 of the row's JSON: the same rows appended again get the same ids.
    RowHash,
    /// The value of this STRING column, e.g. `delivery_id`, so a webhook redelivery (which
    /// differs in `received`) is recognised as the same row.
    Column(&'a str),
}

/// Google BigQuery (or its emulator) as a [`Warehouse`].
#[derive(Clone)]
pub struct BigQueryWarehouse {
    inner: Arc<Inner>,
}

struct Inner {
    config: BigQueryConfig,
    rest: Rest,
    prefix: String,
    dataset_ready: tokio::sync::OnceCell<()>,
    tables_ready: ReadyTables,
}

impl std::fmt::Debug for BigQueryWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryWarehouse")
            .field("project", &self.inner.config.project)
            .field("dataset", &self.inner.config.dataset)
            .field("endpoint", &self.inner.config.api_base())
            .finish()
    }
}

impl BigQueryWarehouse {
    /// A warehouse over `config`'s dataset. Loads the credentials but makes no network call;
    /// [`BigQueryWarehouse::healthcheck`] checks the dataset is reachable.
    ///
    /// # Errors
    /// [`WarehouseError::Remote`] when the credentials cannot be loaded.
    pub fn connect(config: BigQueryConfig) -> Result<Self, WarehouseError> {
        let rest = Rest::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                prefix: config.table_prefix(),
                config,
                rest,
                dataset_ready: tokio::sync::OnceCell::new(),
                tables_ready: ReadyTables::default(),
            }),
        })
    }

    /// The configuration this warehouse was built from.
    pub fn config(&self) -> &BigQueryConfig {
        &self.inner.config
    }

    /// Checks that the dataset exists and the credentials may read it.
    ///
    /// # Errors
    /// [`WarehouseError::Remote`] naming what failed.
    pub async fn healthcheck(&self) -> Result<(), WarehouseError> {
        let inner = &self.inner;
        let path = format!(
            "projects/{}/datasets/{}",
            inner.config.project, inner.config.dataset
        );
        let what = format!(
            "reading dataset {}.{}",
            inner.config.project, inner.config.dataset
        );
        inner
            .rest
            .call(&what, Method::GET, &path, &[], None)
            .await?
            .into_ok(&what)
            .map(drop)
    }

    /// Creates the dataset unless it exists (in the configured location).
    ///
    /// # Errors
    /// [`WarehouseError::Remote`] when BigQuery refuses.
    pub async fn ensure_dataset(&self) -> Result<(), WarehouseError> {
        self.inner
            .dataset_ready
            .get_or_try_init(|| self.create_dataset())
            .await
            .map(drop)
    }

    /// Looks the dataset up first, so that a service account allowed to write tables but not
    /// to create datasets works with a dataset made for it; creates it when missing.
    async fn create_dataset(&self) -> Result<(), WarehouseError> {
        let config = &self.inner.config;
        let what = format!("reading dataset {}.{}", config.project, config.dataset);
        let path = format!("projects/{}/datasets/{}", config.project, config.dataset);
        let answer = self
            .inner
            .rest
            .call(&what, Method::GET, &path, &[], None)
            .await?;
        if answer.status != StatusCode::NOT_FOUND {
            return answer.into_ok(&what).map(drop);
        }
        let mut body = json!({
            "datasetReference": {"projectId": config.project, "datasetId": config.dataset},
        });
        if let Some(location) = &config.location {
            body["location"] = json!(location);
        }
        let what = format!("creating dataset {}.{}", config.project, config.dataset);
        let path = format!("projects/{}/datasets", config.project);
        let answer = self
            .inner
            .rest
            .call(&what, Method::POST, &path, &[], Some(&body))
            .await?;
        if answer.status == StatusCode::CONFLICT {
            return Ok(());
        }
        answer.into_ok(&what).map(drop)
    }

    /// Deletes the dataset with every table in it. For tests and teardown.
    ///
    /// # Errors
    /// [`WarehouseError::Remote`] when BigQuery refuses; a missing dataset is not an error.
    pub async fn delete_dataset(&self) -> Result<(), WarehouseError> {
        let config = &self.inner.config;
        let what = format!("deleting dataset {}.{}", config.project, config.dataset);
        let path = format!("projects/{}/datasets/{}", config.project, config.dataset);
        let answer = self
            .inner
            .rest
            .call(
                &what,
                Method::DELETE,
                &path,
                &[("deleteContents", "true".into())],
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        answer.into_ok(&what).map(drop)
    }

    /// Appends `batch` to `table` like [`Warehouse::append`], choosing each row's `insertId`
    /// with `ids`.
    ///
    /// # Errors
    /// [`WarehouseError::RowsRefused`] when BigQuery refuses rows (or the batch has a column the
    /// table lacks), [`WarehouseError::Remote`] when a request fails after its retries.
    pub async fn insert_rows(
        &self,
        table: &TableDef,
        batch: &RecordBatch,
        ids: InsertIds<'_>,
    ) -> Result<(), WarehouseError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.inner.tables_ready.contains(table) {
            self.ensure_table(table).await?;
        }
        let layout = TableLayout::of(table)?;
        let refused = |first: String| WarehouseError::RowsRefused {
            table: table.name.to_owned(),
            count: batch.num_rows(),
            first,
        };
        for field in batch.schema().fields() {
            if !layout.columns.iter().any(|c| c.name == *field.name()) {
                return Err(refused(format!(
                    "column {} is not in the table (its columns are in sql/{}.sql)",
                    field.name(),
                    table.name
                )));
            }
        }
        let rows = rows::batch_to_rows(batch).map_err(refused)?;
        let ids = insert_ids(batch, &rows, ids).map_err(refused)?;
        let mut chunk: Vec<Value> = Vec::new();
        let mut chunk_bytes = 0;
        let mut first_row = 0;
        for (index, (row, id)) in rows.into_iter().zip(ids).enumerate() {
            let entry = json!({"insertId": id, "json": row});
            let size = entry.to_string().len() + 2;
            if !chunk.is_empty()
                && (chunk.len() >= MAX_ROWS_PER_INSERT || chunk_bytes + size > MAX_BYTES_PER_INSERT)
            {
                self.insert_chunk(table, std::mem::take(&mut chunk), first_row)
                    .await?;
                chunk_bytes = 0;
                first_row = index;
            }
            chunk_bytes += size;
            chunk.push(entry);
        }
        if !chunk.is_empty() {
            self.insert_chunk(table, chunk, first_row).await?;
        }
        Ok(())
    }

    /// The REST path of the table `name` of the dataset.
    fn table_path(&self, name: &str) -> String {
        let config = &self.inner.config;
        format!(
            "projects/{}/datasets/{}/tables/{name}",
            config.project, config.dataset
        )
    }

    async fn insert_chunk(
        &self,
        table: &TableDef,
        rows: Vec<Value>,
        first_row: usize,
    ) -> Result<(), WarehouseError> {
        let config = &self.inner.config;
        let count = rows.len();
        let body = json!({"rows": rows});
        let what = format!(
            "inserting {count} rows into {}.{}.{}",
            config.project, config.dataset, table.name
        );
        let path = format!("{}/insertAll", self.table_path(table.name));
        let answer = self
            .inner
            .rest
            .call(&what, Method::POST, &path, &[], Some(&body))
            .await?
            .into_ok(&what)?;
        let errors = answer
            .get("insertErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if errors.is_empty() {
            return Ok(());
        }
        // Rows refused only because another row of the request was bad say `stopped`; the
        // first real reason is the one worth reporting.
        let described: Vec<(bool, String)> = errors
            .iter()
            .flat_map(|row| {
                let index = row.get("index").and_then(Value::as_u64).unwrap_or(0);
                row.get("errors")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |e| {
                        let reason = e.get("reason").and_then(Value::as_str).unwrap_or("");
                        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                        let location = e.get("location").and_then(Value::as_str).unwrap_or("");
                        (
                            reason == "stopped",
                            format!(
                                "row {}: {message} ({reason}{}{location})",
                                first_row as u64 + index,
                                if location.is_empty() { "" } else { " at " }
                            ),
                        )
                    })
            })
            .collect();
        let first = described
            .iter()
            .find(|(stopped, _)| !stopped)
            .or(described.first())
            .map(|(_, text)| text.clone())
            .unwrap_or_default();
        Err(WarehouseError::RowsRefused {
            table: table.name.to_owned(),
            count: errors.len(),
            first,
        })
    }

    /// Starts `sql` and waits for its first page.
    async fn start_query(&self, sql: &str, params: &Params) -> Result<Pages, WarehouseError> {
        let config = &self.inner.config;
        let sql = crate::sql::resolve(sql, &self.inner.prefix);
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "parameterMode": "NAMED",
            "queryParameters": rows::query_parameters(params),
            "formatOptions": {"useInt64Timestamp": true},
            "timeoutMs": JOB_WAIT_MS,
            "requestId": request_id(),
        });
        if let Some(size) = config.page_size {
            body["maxResults"] = json!(size);
        }
        if let Some(location) = &config.location {
            body["location"] = json!(location);
        }
        let what = "running a query";
        let path = format!("projects/{}/queries", config.project);
        let mut answer = self
            .inner
            .rest
            .call(what, Method::POST, &path, &[], Some(&body))
            .await?
            .into_ok(what)
            .map_err(|e| with_sql(e, &sql))?;
        if let Some(failure) = job_failure(&answer) {
            return Err(query_failed(&failure, &sql));
        }
        let job_id = answer
            .pointer("/jobReference/jobId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| remote(format!("the query answer has no job id: {answer}")))?;
        let location = answer
            .pointer("/jobReference/location")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| config.location.clone());
        let mut pages = Pages {
            warehouse: self.clone(),
            job_id,
            location,
            sql,
            fields: Vec::new(),
            schema: Arc::new(Schema::empty()),
            first: None,
        };
        let mut waited = 0;
        while answer.get("jobComplete").and_then(Value::as_bool) != Some(true) {
            waited += 1;
            if waited > 8640 {
                return Err(remote(format!("query job {} did not finish", pages.job_id)));
            }
            answer = pages.fetch(None).await?;
        }
        pages.set_schema(&answer)?;
        pages.first = Some(answer);
        Ok(pages)
    }
}

/// A query job's result pages.
struct Pages {
    warehouse: BigQueryWarehouse,
    job_id: String,
    location: Option<String>,
    sql: String,
    fields: Vec<BqField>,
    schema: SchemaRef,
    /// The answer that completed the job, whose rows are the first page.
    first: Option<Value>,
}

impl Pages {
    fn set_schema(&mut self, answer: &Value) -> Result<(), WarehouseError> {
        if let Some(fields) = answer.pointer("/schema/fields") {
            self.fields = serde_json::from_value(fields.clone())
                .map_err(|e| remote(format!("reading the result schema: {e}")))?;
        }
        self.schema = rows::arrow_schema(&self.fields);
        Ok(())
    }

    /// One getQueryResults call: the page at `page_token`, or (`None`) the first page once the
    /// job is done.
    async fn fetch(&self, page_token: Option<&str>) -> Result<Value, WarehouseError> {
        let inner = &self.warehouse.inner;
        let mut query = vec![
            ("formatOptions.useInt64Timestamp", "true".to_owned()),
            ("timeoutMs", JOB_WAIT_MS.to_string()),
        ];
        if let Some(size) = inner.config.page_size {
            query.push(("maxResults", size.to_string()));
        }
        if let Some(location) = &self.location {
            query.push(("location", location.clone()));
        }
        if let Some(token) = page_token {
            query.push(("pageToken", token.to_owned()));
        }
        let what = format!("reading results of query job {}", self.job_id);
        let path = format!("projects/{}/queries/{}", inner.config.project, self.job_id);
        let answer = inner
            .rest
            .call(&what, Method::GET, &path, &query, None)
            .await?
            .into_ok(&what)?;
        if let Some(failure) = job_failure(&answer) {
            return Err(query_failed(&failure, &self.sql));
        }
        Ok(answer)
    }

    /// The batch of an answer's rows, and the token of the next page.
    fn page(&self, answer: &Value) -> Result<(RecordBatch, Option<String>), WarehouseError> {
        let rows = answer
            .get("rows")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let batch = rows::page_to_batch(&self.schema, &self.fields, rows)?;
        let token = answer
            .get("pageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok((batch, token))
    }

    /// The next non-empty batch, or `None` after the last page.
    async fn next(
        &mut self,
        token: &mut Option<String>,
    ) -> Result<Option<RecordBatch>, WarehouseError> {
        loop {
            let answer = match self.first.take() {
                Some(first) => first,
                None => match token.take() {
                    Some(next) => self.fetch(Some(&next)).await?,
                    None => return Ok(None),
                },
            };
            let (batch, next) = self.page(&answer)?;
            *token = next;
            if batch.num_rows() > 0 {
                return Ok(Some(batch));
            }
        }
    }
}

fn query_failed(failure: &str, sql: &str) -> WarehouseError {
    remote(format!(
        "query failed: {failure}\nquery: {}",
        first_line(sql)
    ))
}

fn with_sql(error: WarehouseError, sql: &str) -> WarehouseError {
    match error {
        WarehouseError::Remote { backend, message } => WarehouseError::Remote {
            backend,
            message: format!("{message}\nquery: {}", first_line(sql)),
        },
        other => other,
    }
}

/// The first line of SQL that is not a comment, to say which statement failed.
fn first_line(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("--"))
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// A fresh jobs.query `requestId` (UUID-shaped, 36 characters): retries of one call share it.
pub(crate) fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    hasher.update(now.as_nanos().to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let hex = hex::encode(hasher.finalize());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn insert_ids(
    batch: &RecordBatch,
    rows: &[Map<String, Value>],
    ids: InsertIds<'_>,
) -> Result<Vec<String>, String> {
    match ids {
        InsertIds::RowHash => Ok(rows
            .iter()
            .map(|row| {
                // serde_json's map is ordered by key, so the text is stable.
                let text = serde_json::to_vec(row).unwrap_or_default();
                hex::encode(Sha256::digest(&text))
            })
            .collect()),
        InsertIds::Column(name) => {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("the insert id column {name} is not in the batch"))?;
            let text = arrow::compute::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            let text = text.as_string::<i32>();
            (0..text.len())
                .map(|row| {
                    if text.is_null(row) {
                        Err(format!("row {row}: the insert id column {name} is NULL"))
                    } else {
                        Ok(text.value(row).to_owned())
                    }
                })
                .collect()
        }
    }
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    fn backend(&self) -> &'static str {
        "bigquery"
    }

    async fn query(&self, sql: &str, params: &Params) -> Result<QueryResult, WarehouseError> {
        let mut pages = self.start_query(sql, params).await?;
        let mut token = None;
        let mut batches = Vec::new();
        while let Some(batch) = pages.next(&mut token).await? {
            batches.push(batch);
        }
        Ok(QueryResult {
            schema: Arc::clone(&pages.schema),
            batches,
        })
    }

    async fn query_stream(
        &self,
        sql: &str,
        params: &Params,
    ) -> Result<BatchStream, WarehouseError> {
        let pages = self.start_query(sql, params).await?;
        let stream = futures::stream::try_unfold((pages, None), |(mut pages, mut token)| async {
            let batch = pages.next(&mut token).await?;
            Ok(batch.map(|batch| (batch, (pages, token))))
        });
        Ok(stream.boxed())
    }

    async fn ensure_table(&self, table: &TableDef) -> Result<(), WarehouseError> {
        self.ensure_dataset().await?;
        let layout = TableLayout::of(table)?;
        let config = &self.inner.config;
        let fields: Vec<Value> = layout
            .columns
            .iter()
            .map(|column| {
                let mut field = json!({
                    "name": column.name,
                    "type": column.column_type.bigquery_name(),
                    "mode": if column.nullable { "NULLABLE" } else { "REQUIRED" },
                });
                if let Some(description) = &column.description {
                    field["description"] = json!(description);
                }
                field
            })
            .collect();
        let mut body = json!({
            "tableReference": {
                "projectId": config.project,
                "datasetId": config.dataset,
                "tableId": table.name,
            },
            "schema": {"fields": fields},
        });
        if let Some(column) = &layout.partition_by_day {
            body["timePartitioning"] = json!({"type": "DAY", "field": column});
        }
        if !layout.cluster_by.is_empty() {
            body["clustering"] = json!({"fields": layout.cluster_by});
        }
        let what = format!(
            "creating table {}.{}.{}",
            config.project, config.dataset, table.name
        );
        let path = format!(
            "projects/{}/datasets/{}/tables",
            config.project, config.dataset
        );
        let answer = self
            .inner
            .rest
            .call(&what, Method::POST, &path, &[], Some(&body))
            .await?;
        if answer.status != StatusCode::CONFLICT {
            answer.into_ok(&what)?;
        }
        self.inner.tables_ready.insert(table);
        Ok(())
    }

    async fn append(&self, table: &TableDef, batch: RecordBatch) -> Result<(), WarehouseError> {
        self.insert_rows(table, &batch, InsertIds::RowHash).await
    }

    async fn replace_view_with_table(&self, table: &TableDef) -> Result<(), WarehouseError> {
        self.ensure_dataset().await?;
        let config = &self.inner.config;
        let path = self.table_path(table.name);
        let what = format!(
            "reading the table {}.{}.{}",
            config.project, config.dataset, table.name
        );
        let answer = self
            .inner
            .rest
            .call(&what, Method::GET, &path, &[], None)
            .await?;
        if answer.status != StatusCode::NOT_FOUND {
            let existing = answer.into_ok(&what)?;
            if existing["type"].as_str() != Some("VIEW") {
                return self.ensure_table(table).await;
            }
            // DDL rather than tables.delete: the same on BigQuery, and the emulator's
            // tables.delete drops tables only.
            let drop = crate::sql::name_tables(crate::sql::DROP_VIEW, &[("view", table.name)]);
            self.query(&drop, &Params::new()).await?;
        }
        self.ensure_table(table).await
    }
}
