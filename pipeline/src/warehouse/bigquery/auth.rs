//! Access tokens for BigQuery requests, through Google's `google-cloud-auth` crate.
//!
//! `google-cloud-auth` covers every credential kind a deployment meets (service account keys,
//! gcloud's user login, the metadata server of Cloud Run, workload identity federation) and
//! caches and refreshes tokens itself; gcp-bigquery-client's authenticators are crate-private
//! and miss some of those.

use google_cloud_auth::credentials::{
    AccessTokenCredentials, Builder as AdcBuilder, service_account,
};

use super::config::Credentials;
use crate::error::error_chain;
use crate::warehouse::WarehouseError;

/// The OAuth scope of BigQuery's API.
const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

/// Where a request's bearer token comes from.
#[derive(Clone)]
pub(crate) struct TokenSource(Option<AccessTokenCredentials>);

impl TokenSource {
    /// Builds the credentials `credentials` names. Makes no network call.
    pub(crate) fn new(credentials: &Credentials) -> Result<Self, WarehouseError> {
        let failed = |what: String, error: String| WarehouseError::Remote {
            backend: "bigquery",
            message: format!("loading {what}: {error}"),
        };
        let scopes = [BIGQUERY_SCOPE];
        let built = match credentials {
            Credentials::None => return Ok(Self(None)),
            Credentials::ApplicationDefault => AdcBuilder::default()
                .with_scopes(scopes)
                .build_access_token_credentials()
                .map_err(|e| {
                    failed(
                        "application default credentials".into(),
                        format!(
                            "{}; set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth \
                             application-default login`, or pass a service account key file",
                            error_chain(&e)
                        ),
                    )
                })?,
            Credentials::ServiceAccountKeyFile(path) => {
                let what = || format!("the service account key {}", path.display());
                let text =
                    std::fs::read_to_string(path).map_err(|e| failed(what(), e.to_string()))?;
                let key: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| failed(what(), format!("not JSON: {e}")))?;
                service_account::Builder::new(key)
                    .with_access_specifier(service_account::AccessSpecifier::Scopes(
                        scopes.iter().map(|s| (*s).to_owned()).collect(),
                    ))
                    .build_access_token_credentials()
                    .map_err(|e| failed(what(), error_chain(&e)))?
            }
        };
        Ok(Self(Some(built)))
    }

    /// The bearer token to send, or `None` for an anonymous request.
    pub(crate) async fn token(&self) -> Result<Option<String>, WarehouseError> {
        let Some(credentials) = &self.0 else {
            return Ok(None);
        };
        let token = credentials
            .access_token()
            .await
            .map_err(|e| WarehouseError::Remote {
                backend: "bigquery",
                message: format!("getting an access token: {}", error_chain(&e)),
            })?;
        Ok(Some(token.token))
    }
}
