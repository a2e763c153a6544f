//! Where a job's blob store is, from its flag, GMA's bucket variable, or the data directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_pipeline::blob::{BlobStore, open_blob_store};

/// Opens a job's blob store at [`store_location`]; errors name `flag_name`, where it is set.
pub fn open_job_store(
    flag: Option<&str>,
    bucket_var: &str,
    default: &Path,
    what: &str,
    flag_name: &str,
) -> Result<Arc<dyn BlobStore>> {
    let location = store_location(flag, bucket_var, default);
    open_blob_store(&location)
        .with_context(|| format!("opening the {what} store {location} ({flag_name})"))
}

/// The blob store location: `flag` when given, else GMA's `bucket_var` (a bucket name) as
/// `gs://BUCKET`, else the folder `default`.
fn store_location(flag: Option<&str>, bucket_var: &str, default: &Path) -> String {
    if let Some(location) = flag.map(str::trim).filter(|l| !l.is_empty()) {
        return location.to_owned();
    }
    match std::env::var(bucket_var) {
        Ok(bucket) if !bucket.trim().is_empty() => format!("gs://{}", bucket.trim()),
        _ => default.display().to_string(),
    }
}
