//! A small blocking client of the `/v1` API, for the `hedge` CLI (so that only this crate knows HTTP). It
//! reads and writes the types of [`crate::api_types`], the same the server answers with.
//!
//! A submission carries an `Idempotency-Key` (a random UUID per [`Client::submit`]); when the connection
//! fails, times out or the server answers 5xx, the same request is sent again with the same key, so a retry
//! whose first response was lost returns the first job instead of making a second one.

use crate::api_types::{
    CommitmentList, CommitmentReport, CostQuery, ErrorBody, ExportQuery, JobDetail, JobEvents,
    JobLogs, JobPage, JobView, ListQuery, ProviderList, SpendReport, SubmittedJob, WindowQuery,
};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The header that makes `POST /v1/jobs` idempotent.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// What failed in a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Hedge server at {url}: {reason}. Is `hedge serve` running, and is HEDGE_URL right?")]
    Unreachable { url: String, reason: String },
    #[error("{message} ({code}{}, HTTP {status})", field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    #[error("the server at {url} answered HTTP {status} with an unexpected body")]
    BadResponse { url: String, status: u16 },
    #[error("no API token: set HEDGE_TOKEN (the admin token is in <data_dir>/admin.token)")]
    NoToken,
}

impl ClientError {
    /// Whether sending the same request again may succeed: the server was not reached, the answer was
    /// lost, or the server failed (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { status, .. } | ClientError::BadResponse { status, .. } => {
                *status >= 500
            }
            ClientError::NoToken => false,
        }
    }
}

/// How often and how patiently a submission is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub first_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            first_backoff: Duration::from_millis(250),
        }
    }
}

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
    retry: Retry,
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        Self::with_timeout(base_url, token, Duration::from_secs(30))
    }

    /// A client whose requests give up after `timeout` (a timed-out submission is retried).
    pub fn with_timeout(base_url: &str, token: Option<String>, timeout: Duration) -> Self {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(timeout)
            .build()
            .expect("a plain HTTP client always builds");
        Client {
            base: base_url.trim_end_matches('/').to_owned(),
            token,
            http,
            retry: Retry::default(),
        }
    }

    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let token = self.token.as_deref().ok_or(ClientError::NoToken)?;
        let resp = req
            .bearer_auth(token)
            .send()
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: if e.is_connect() {
                    "connection refused".to_owned()
                } else if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.to_string()
                },
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: format!("reading the answer: {e}"),
        })?;
        if status >= 400 {
            let e: ErrorBody =
                serde_json::from_slice(&bytes).map_err(|_| ClientError::BadResponse {
                    url: url.to_owned(),
                    status,
                })?;
            return Err(ClientError::Api {
                status,
                code: e.error.code,
                message: e.error.message,
                field: e.error.field,
            });
        }
        serde_json::from_slice(&bytes).map_err(|_| ClientError::BadResponse {
            url: url.to_owned(),
            status,
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url)
    }

    /// Submits a task YAML (with optional `team`, `priority`, `deadline`) under a new idempotency key,
    /// retrying with that key as [`Client::submit_with_key`] does.
    pub fn submit(&self, yaml: String) -> Result<SubmittedJob, ClientError> {
        self.submit_with_key(&yaml, &new_idempotency_key())
    }

    /// Submits under `key`: sends again with the same key while the failure is retryable
    /// ([`ClientError::is_retryable`]), backing off exponentially; the server answers a repeat with the job
    /// the key first made.
    pub fn submit_with_key(&self, yaml: &str, key: &str) -> Result<SubmittedJob, ClientError> {
        let url = format!("{}/v1/jobs", self.base);
        let mut backoff = self.retry.first_backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            let req = self
                .http
                .post(&url)
                .header("content-type", "application/yaml")
                .header(IDEMPOTENCY_KEY, key)
                .body(yaml.to_owned());
            match self.send(req, &url) {
                Err(e) if e.is_retryable() && tries < self.retry.attempts.max(1) => {
                    std::thread::sleep(backoff);
                    backoff = backoff.saturating_mul(2);
                }
                r => return r,
            }
        }
    }

    pub fn jobs(&self, query: &ListQuery) -> Result<JobPage, ClientError> {
        let url = format!("{}/v1/jobs", self.base);
        self.send(self.http.get(&url).query(query), &url)
    }
    pub fn job(&self, id: u64) -> Result<JobDetail, ClientError> {
        self.get(&format!("/v1/jobs/{id}"))
    }
    pub fn events(&self, id: u64) -> Result<JobEvents, ClientError> {
        self.get(&format!("/v1/jobs/{id}/events"))
    }
    pub fn cancel(&self, id: u64) -> Result<JobView, ClientError> {
        let url = format!("{}/v1/jobs/{id}/cancel", self.base);
        self.send(self.http.post(&url), &url)
    }
    pub fn logs(&self, id: u64, tail_bytes: u64) -> Result<JobLogs, ClientError> {
        self.get(&format!("/v1/jobs/{id}/logs?tail_bytes={tail_bytes}"))
    }
    pub fn providers(&self) -> Result<ProviderList, ClientError> {
        self.get("/v1/providers")
    }
    /// The broker's commitments with their use (`hedge plan --existing-from` plans around them).
    pub fn commitments(&self) -> Result<CommitmentList, ClientError> {
        self.get("/v1/commitments")
    }
    pub fn spend(&self, query: &CostQuery) -> Result<SpendReport, ClientError> {
        let url = format!("{}/v1/cost/spend", self.base);
        self.send(self.http.get(&url).query(query), &url)
    }
    pub fn commitment_metrics(&self, query: &WindowQuery) -> Result<CommitmentReport, ClientError> {
        let url = format!("{}/v1/cost/commitments", self.base);
        self.send(self.http.get(&url).query(query), &url)
    }

    /// Streams a FOCUS CSV export into `out` as it arrives (no timeout: a large export takes as long as it
    /// takes). Returns the bytes written.
    pub fn export(
        &self,
        query: &ExportQuery,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ClientError> {
        let token = self.token.as_deref().ok_or(ClientError::NoToken)?;
        let url = format!("{}/v1/cost/export", self.base);
        let unreachable = |e: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e,
        };
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(None)
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let mut resp = http
            .get(&url)
            .query(query)
            .bearer_auth(token)
            .send()
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let bytes = resp
                .bytes()
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
            let e: ErrorBody =
                serde_json::from_slice(&bytes).map_err(|_| ClientError::BadResponse {
                    url: url.clone(),
                    status,
                })?;
            return Err(ClientError::Api {
                status,
                code: e.error.code,
                message: e.error.message,
                field: e.error.field,
            });
        }
        std::io::copy(&mut resp, out).map_err(|e| unreachable(format!("reading the export: {e}")))
    }
}

/// A fresh idempotency key: a random (v4) UUID.
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}
