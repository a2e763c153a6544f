//! What a leech run did.

use std::fmt;

use gma_pipeline::flow::RunSummary;

/// The counts of one run.
#[derive(Debug, Clone)]
pub struct LeechSummary {
    /// Run attempts archived.
    pub archived: u64,
    /// Of those, found stored by an earlier, interrupted try (not downloaded again).
    pub reused: u64,
    /// Bytes archived.
    pub bytes: u64,
    /// Logs GitHub no longer has (final).
    pub not_found: u64,
    /// Failed tries (retried later, up to the cap).
    pub failed: u64,
    /// Runs still in progress, left for a later run.
    pub skipped: u64,
    /// HTTP requests sent to GitHub.
    pub github_requests: u64,
    /// Installation tokens minted (one per installation, reused until shortly before expiry).
    pub tokens_issued: u64,
    /// The pipeline's own summary.
    pub run: RunSummary,
}

impl LeechSummary {
    /// Logs the summary as one structured line.
    pub fn log(&self) {
        tracing::info!(
            archived = self.archived,
            reused = self.reused,
            bytes = self.bytes,
            not_found = self.not_found,
            failed = self.failed,
            skipped = self.skipped,
            github_requests = self.github_requests,
            tokens_issued = self.tokens_issued,
            duration_ms = self.run.duration.as_millis() as u64,
            "The leech run finished."
        );
    }
}

impl fmt::Display for LeechSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = self.bytes as f64 / (1024.0 * 1024.0);
        writeln!(
            f,
            "leech: archived {} run attempts ({mib:.1} MiB, {} found already stored), not found {}, failed {}, skipped (in progress) {}",
            self.archived, self.reused, self.not_found, self.failed, self.skipped
        )?;
        writeln!(
            f,
            "  GitHub requests {}, installation tokens {}",
            self.github_requests, self.tokens_issued
        )?;
        write!(f, "{}", self.run)
    }
}
