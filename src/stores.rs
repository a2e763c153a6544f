//! Where a job's blob store is, from its flag, GMA's bucket variable, or the data directory.

use std::path::Path;

/// The blob store location: `flag` when given, else GMA's `bucket_var` (a bucket name) as
/// `gs://BUCKET`, else the folder `default`.
pub fn store_location(flag: Option<&str>, bucket_var: &str, default: &Path) -> String {
    if let Some(location) = flag.map(str::trim).filter(|l| !l.is_empty()) {
        return location.to_owned();
    }
    match std::env::var(bucket_var) {
        Ok(bucket) if !bucket.trim().is_empty() => format!("gs://{}", bucket.trim()),
        _ => default.display().to_string(),
    }
}
