//! The GitHub flags turned into a client and credentials.

use std::sync::Arc;

use anyhow::{Context, Result};
use gma_pipeline::github::{AppKey, GITHUB_API_URL, GitHubClient, GitHubConfig, Secret};

use crate::cli::GitHubArgs;

/// A client and the credentials the flags give.
pub struct GitHub {
    /// The REST client.
    pub client: GitHubClient,
    /// The App, when its id and key are set.
    pub app: Option<Arc<AppKey>>,
    /// The token, when set.
    pub token: Option<Secret>,
}

impl GitHubArgs {
    /// The API URL: --github-api-url, else GMA's GITHUB_ENTERPRISE_SERVER_URL + /api/v3, else
    /// github.com's.
    fn api_url(&self) -> String {
        if let Some(url) = self
            .github_api_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            return url.to_owned();
        }
        match std::env::var("GITHUB_ENTERPRISE_SERVER_URL") {
            Ok(server) if !server.trim().is_empty() => {
                format!("{}/api/v3", server.trim().trim_end_matches('/'))
            }
            _ => GITHUB_API_URL.to_owned(),
        }
    }

    /// Builds the client and loads the App's key.
    pub fn connect(&self) -> Result<GitHub> {
        let mut config = GitHubConfig::new(self.api_url());
        config.mutations_per_minute = self.github_mutations_per_minute;
        config.retry.max_rate_limit_wait = self.github_max_rate_limit_wait;
        let client = GitHubClient::new(config)?;
        let pem = match (&self.github_private_key, &self.github_private_key_file) {
            (Some(pem), _) if !pem.trim().is_empty() => Some(pem.clone().into_bytes()),
            (_, Some(path)) => Some(std::fs::read(path).with_context(|| {
                format!("reading the App's private key file {}", path.display())
            })?),
            _ => None,
        };
        let app_id = self
            .github_app_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let app = match (app_id, pem) {
            (Some(id), Some(pem)) => Some(Arc::new(AppKey::from_pem(id, &pem)?)),
            (Some(_), None) => anyhow::bail!(
                "GITHUB_APP_ID is set but the App's private key is not: set GITHUB_PRIVATE_KEY \
                 (the PEM text) or --github-private-key-file"
            ),
            (None, Some(_)) => anyhow::bail!(
                "the App's private key is set but GITHUB_APP_ID is not; set it to the App's id"
            ),
            (None, None) => None,
        };
        let token = self
            .github_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        Ok(GitHub { client, app, token })
    }
}
