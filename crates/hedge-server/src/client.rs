//! A small blocking client of the `/v1` API, for the `hedge` CLI (so that only this crate knows HTTP).

use serde_json::Value;
use std::time::Duration;

/// What failed in a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Hedge server at {url}: {reason}. Is `hedge serve` running, and is HEDGE_URL right?")]
    Unreachable { url: String, reason: String },
    #[error("{message} ({code}{}, HTTP {status})", field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Api { status: u16, code: String, message: String, field: Option<String> },
    #[error("the server at {url} answered HTTP {status} with an unexpected body")]
    BadResponse { url: String, status: u16 },
    #[error("no API token: set HEDGE_TOKEN (the admin token is in <data_dir>/admin.token)")]
    NoToken,
}

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client always builds");
        Client { base: base_url.trim_end_matches('/').to_owned(), token, http }
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder, url: &str) -> Result<Value, ClientError> {
        let token = self.token.as_deref().ok_or(ClientError::NoToken)?;
        let resp = req.bearer_auth(token).send().map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: if e.is_connect() { "connection refused".to_owned() } else if e.is_timeout() { "timed out".to_owned() } else { e.to_string() },
        })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().map_err(|_| ClientError::BadResponse { url: url.to_owned(), status })?;
        if status >= 400 {
            let e = &body["error"];
            return Err(ClientError::Api {
                status,
                code: e["code"].as_str().unwrap_or("unknown").to_owned(),
                message: e["message"].as_str().unwrap_or("").to_owned(),
                field: e["field"].as_str().map(str::to_owned),
            });
        }
        Ok(body)
    }

    fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url)
    }

    /// Submits a task YAML (with optional `team`, `priority`, `deadline`).
    pub fn submit(&self, yaml: String) -> Result<Value, ClientError> {
        let url = format!("{}/v1/jobs", self.base);
        self.send(self.http.post(&url).header("content-type", "application/yaml").body(yaml), &url)
    }
    /// `query` is a URL query string without `?` (e.g. `state=running&limit=20`).
    pub fn jobs(&self, query: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/jobs?{query}"))
    }
    pub fn job(&self, id: u64) -> Result<Value, ClientError> {
        self.get(&format!("/v1/jobs/{id}"))
    }
    pub fn events(&self, id: u64) -> Result<Value, ClientError> {
        self.get(&format!("/v1/jobs/{id}/events"))
    }
    pub fn cancel(&self, id: u64) -> Result<Value, ClientError> {
        let url = format!("{}/v1/jobs/{id}/cancel", self.base);
        self.send(self.http.post(&url), &url)
    }
    pub fn logs(&self, id: u64, tail_bytes: u64) -> Result<Value, ClientError> {
        self.get(&format!("/v1/jobs/{id}/logs?tail_bytes={tail_bytes}"))
    }
    pub fn providers(&self) -> Result<Value, ClientError> {
        self.get("/v1/providers")
    }
}
