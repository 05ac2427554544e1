//! The EC2 driver: one instance per attempt, through the EC2 Query API (`Action=...&Version=2016-11-15`,
//! SigV4-signed with the AWS SDK's own signer, `aws-sigv4`; XML answers read with quick-xml). Tested
//! against the moto server.
//!
//! **Launch.** `RunInstances` with the instance type placement chose, `InstanceMarketOptions` for spot, the
//! commitment's capacity reservation when it names one, `UserData` (the boot script below) and tags
//! `hedge:idempotency-key`, `hedge:job`, `hedge:attempt`, `hedge:team`, `hedge:commitment`. **Idempotency:**
//! before launching, the driver looks for an instance tagged with the key (`DescribeInstances` with a
//! `tag:` filter) and reports that one; it also sends the key as `ClientToken`, which real EC2 honours and
//! moto does not (../shared/NOTES.md), so the tag lookup is what holds everywhere.
//!
//! **How a job finishes.** Nothing tells EC2 that a command ended, so the boot script runs `setup` and
//! `run` with the task's `envs`, then reports to the broker: `POST {report_url}/v1/attempts/{key}/logs`
//! (the output's tail) and `POST {report_url}/v1/attempts/{key}/status` with `{"exit_code": N}`, each with
//! `Authorization: Bearer <attempt token>`. The attempt token is `hex(sha256(report_secret ":" key))`
//! ([`attempt_token`]), so the broker checks it without storing one per attempt. The broker hands the
//! report to [`Ec2Driver::record_report`], which writes it under `<state_dir>/<key>/`; from then on
//! `observe` answers `Exited`, and the instance is terminated (the work is done: stop paying for it).
//!
//! **Observe and cancel.** `observe` maps the instance state: pending → queued; running, stopping, stopped
//! → running (unless a report arrived); shutting-down, terminated → cancelled if Hedge cancelled it (a
//! `cancelled` marker in the state directory), otherwise **lost: preempted** (a spot interruption or any
//! termination Hedge did not ask for), with EC2's state reason. `cancel` writes the marker, calls
//! `TerminateInstances`, and confirms only once the instance is `terminated`.
//!
//! Credentials and tokens never appear in `Debug` output or errors.

use crate::{
    Capabilities, Driver, DriverError, IdempotencyKey, LaunchSpec, Logs, Observation, Support,
};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine;
use hedge_core::{Accelerator, ProviderId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The EC2 API version of every request.
pub const EC2_API_VERSION: &str = "2016-11-15";

/// Tag names the driver writes on every instance.
pub const TAG_KEY: &str = "hedge:idempotency-key";

/// One AWS account and region reached through the EC2 API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2ProviderConfig {
    pub name: ProviderId,
    /// The EC2 endpoint, e.g. `https://ec2.us-east-1.amazonaws.com` or a moto server's URL.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The AMI instances boot from.
    pub image_id: String,
    /// Where the boot script reports the exit status and output: the broker's URL as instances reach it.
    pub report_url: String,
    /// Secret from which per-attempt report tokens are derived ([`attempt_token`]).
    pub report_secret: String,
    /// Where reports are kept, per attempt.
    pub state_dir: PathBuf,
    /// Timeout of every API call.
    pub timeout: Duration,
}

impl fmt::Debug for Ec2ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ec2ProviderConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("image_id", &self.image_id)
            .field("report_url", &self.report_url)
            .field("report_secret", &"<redacted>")
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

/// What a boot script reports when its command ends.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AttemptReport {
    pub exit_code: i32,
}

/// The token an attempt's boot script presents when it reports: `hex(sha256(secret ":" key))`.
pub fn attempt_token(secret: &str, key: &IdempotencyKey) -> String {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(b":");
    h.update(key.as_str().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What EC2 says of one instance.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InstanceInfo {
    pub instance_id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub state_reason: Option<String>,
    pub instance_type: String,
    /// `spot` for spot instances.
    pub lifecycle: Option<String>,
    /// The instance's tags, as EC2 lists them.
    pub tags: Vec<(String, String)>,
}

/// Maps an instance state onto an observation (see the module docs). Pure.
pub fn map_instance(
    state: &str,
    reason: Option<&str>,
    report: Option<i32>,
    cancelled_by_hedge: bool,
) -> Observation {
    let gone = matches!(state, "shutting-down" | "terminated");
    match (report, gone) {
        // The command ended and reported: that is the outcome, whatever happened to the instance after.
        (Some(code), _) => Observation::Exited { code },
        (None, true) if cancelled_by_hedge => {
            if state == "terminated" {
                Observation::Cancelled
            } else {
                Observation::Running
            }
        }
        (None, true) => Observation::Lost {
            reason: format!(
                "preempted: instance {state} without a Hedge cancel ({})",
                reason.unwrap_or("no reason given")
            ),
        },
        (None, false) => match state {
            "pending" => Observation::Queued,
            _ => Observation::Running,
        },
    }
}

// ---- XML answers ------------------------------------------------------------------------------------------

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct DescribeInstancesResponse {
    #[serde(default)]
    reservation_set: ItemSet<Reservation>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct RunInstancesResponse {
    #[serde(default)]
    instances_set: ItemSet<XmlInstance>,
}

#[derive(Deserialize, Debug)]
struct ItemSet<T> {
    #[serde(rename = "item", default = "Vec::new")]
    items: Vec<T>,
}

impl<T> Default for ItemSet<T> {
    fn default() -> Self {
        ItemSet { items: Vec::new() }
    }
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Reservation {
    #[serde(default)]
    instances_set: ItemSet<XmlInstance>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct XmlInstance {
    instance_id: String,
    #[serde(default)]
    instance_type: String,
    instance_state: XmlState,
    #[serde(default)]
    state_reason: Option<XmlReason>,
    #[serde(default)]
    instance_lifecycle: Option<String>,
    #[serde(default)]
    tag_set: ItemSet<XmlTag>,
}

#[derive(Deserialize, Debug)]
struct XmlTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Debug)]
struct XmlState {
    name: String,
}

#[derive(Deserialize, Debug)]
struct XmlReason {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct ErrorResponse {
    #[serde(default)]
    errors: Option<XmlErrors>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct XmlErrors {
    #[serde(default)]
    error: Vec<XmlError>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct XmlError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct AttributeResponse {
    #[serde(default)]
    user_data: Option<XmlValue>,
}

#[derive(Deserialize, Debug)]
struct XmlValue {
    #[serde(default)]
    value: Option<String>,
}

impl From<XmlInstance> for InstanceInfo {
    fn from(i: XmlInstance) -> Self {
        InstanceInfo {
            instance_id: i.instance_id,
            state: i.instance_state.name,
            state_reason: i.state_reason.and_then(|r| r.message.or(r.code)),
            instance_type: i.instance_type,
            lifecycle: i.instance_lifecycle,
            tags: i
                .tag_set
                .items
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
        }
    }
}

/// An EC2 API error: its code (`InsufficientInstanceCapacity`, `InvalidParameterValue`, ...) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Error codes that mean "no capacity here now": the job goes elsewhere.
fn is_capacity_error(code: &str) -> bool {
    matches!(
        code,
        "InsufficientInstanceCapacity"
            | "InsufficientCapacity"
            | "InsufficientHostCapacity"
            | "InsufficientReservedInstanceCapacity"
            | "InstanceLimitExceeded"
            | "MaxSpotInstanceCountExceeded"
            | "SpotMaxPriceTooLow"
            | "Unsupported"
            | "InvalidParameterValue"
            | "InvalidAMIID.NotFound"
            | "InvalidAMIID.Malformed"
    )
}

/// URL, headers and body of a signed Query API request.
type SignedRequest = (String, Vec<(String, Vec<u8>)>, String);

/// The EC2 driver.
pub struct Ec2Driver {
    config: Ec2ProviderConfig,
    http: reqwest::Client,
    accelerator: Option<Accelerator>,
}

impl Ec2Driver {
    /// Checks the endpoint and creates the state directory; does not contact AWS (see [`Driver::probe`]).
    pub fn new(config: Ec2ProviderConfig) -> Result<Self, DriverError> {
        let url = reqwest::Url::parse(&config.endpoint).map_err(|e| DriverError::Unsupported {
            provider: config.name.clone(),
            reason: format!("endpoint {:?} is not a URL: {e}", config.endpoint),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DriverError::Unsupported {
                provider: config.name.clone(),
                reason: format!("endpoint {:?} must be http:// or https://", config.endpoint),
            });
        }
        if config.access_key_id.is_empty() || config.secret_access_key.is_empty() {
            return Err(DriverError::Unsupported {
                provider: config.name.clone(),
                reason: "missing AWS credentials".into(),
            });
        }
        std::fs::create_dir_all(&config.state_dir)
            .map_err(DriverError::io("create directory", &config.state_dir))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .timeout(config.timeout)
            .build()
            .map_err(|e| DriverError::Unsupported {
                provider: config.name.clone(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(Ec2Driver {
            config,
            http,
            accelerator: None,
        })
    }

    /// The accelerator the instance types of this provider carry (for [`Driver::capabilities`]).
    pub fn with_accelerator(mut self, a: Option<Accelerator>) -> Self {
        self.accelerator = a;
        self
    }

    pub fn config(&self) -> &Ec2ProviderConfig {
        &self.config
    }

    fn unreachable(&self, e: impl fmt::Display) -> DriverError {
        DriverError::Unreachable {
            provider: self.config.name.clone(),
            reason: e.to_string(),
        }
    }

    fn dir(&self, key: &IdempotencyKey) -> PathBuf {
        self.config.state_dir.join(key.as_str())
    }

    /// The signed request of one Query API call: URL, headers, body.
    // SigV4 signs with the current time: the driver is the I/O edge, and AWS rejects stale signatures.
    #[allow(clippy::disallowed_methods)]
    fn signed(&self, params: &[(String, String)]) -> Result<SignedRequest, DriverError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        form.append_pair("Version", EC2_API_VERSION);
        let body = form.finish();
        let url = format!("{}/", self.config.endpoint.trim_end_matches('/'));
        let identity = Credentials::new(
            &self.config.access_key_id,
            &self.config.secret_access_key,
            None,
            None,
            "hedge-config",
        )
        .into();
        let signing = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.unreachable(format!("signing: {e}")))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signable = SignableRequest::new(
            "POST",
            &url,
            std::iter::once(("content-type", content_type)),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| self.unreachable(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &signing)
            .map_err(|e| self.unreachable(format!("signing: {e}")))?
            .into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", content_type)
            .body(())
            .map_err(|e| self.unreachable(e))?;
        instructions.apply_to_request_http1x(&mut req);
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        Ok((url, headers, body))
    }

    /// One signed Query API call; `Ok(body)` for 2xx, `Err(ApiError)` for an EC2 error answer.
    async fn call(
        &self,
        params: &[(String, String)],
    ) -> Result<Result<String, ApiError>, DriverError> {
        let (url, headers, body) = self.signed(params)?;
        let mut rb = self.http.post(&url).body(body);
        for (name, value) in headers {
            rb = rb.header(name, value);
        }
        let resp = rb.send().await.map_err(|e| {
            self.unreachable(if e.is_timeout() {
                "EC2 did not answer in time".to_owned()
            } else {
                e.to_string()
            })
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return Ok(Ok(text));
        }
        let parsed: Option<XmlError> = quick_xml::de::from_str::<ErrorResponse>(&text)
            .ok()
            .and_then(|r| r.errors)
            .and_then(|e| e.error.into_iter().next());
        let (code, message) = parsed.map(|e| (e.code, e.message)).unwrap_or_else(|| {
            (
                format!("HTTP{}", status.as_u16()),
                text.chars().take(200).collect(),
            )
        });
        if status.is_server_error()
            || matches!(
                code.as_str(),
                "AuthFailure"
                    | "UnauthorizedOperation"
                    | "RequestExpired"
                    | "SignatureDoesNotMatch"
                    | "InvalidClientTokenId"
            )
        {
            return Err(self.unreachable(format!("EC2 answered HTTP {status}: {code}: {message}")));
        }
        Ok(Err(ApiError {
            status: status.as_u16(),
            code,
            message,
        }))
    }

    /// Every instance tagged with this attempt's key (normally none or one).
    pub async fn instances_of(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Vec<InstanceInfo>, DriverError> {
        let params = vec![
            ("Action".to_owned(), "DescribeInstances".to_owned()),
            ("Filter.1.Name".to_owned(), format!("tag:{TAG_KEY}")),
            ("Filter.1.Value.1".to_owned(), key.as_str().to_owned()),
        ];
        let text = self.call(&params).await?.map_err(|e| {
            self.unreachable(format!("DescribeInstances: {}: {}", e.code, e.message))
        })?;
        let r: DescribeInstancesResponse = quick_xml::de::from_str(&text)
            .map_err(|e| self.unreachable(format!("unexpected DescribeInstances answer: {e}")))?;
        Ok(r.reservation_set
            .items
            .into_iter()
            .flat_map(|r| r.instances_set.items)
            .map(InstanceInfo::from)
            .collect())
    }

    /// The boot script an instance was launched with (`DescribeInstanceAttribute userData`), decoded.
    pub async fn user_data(&self, instance_id: &str) -> Result<Option<String>, DriverError> {
        let params = vec![
            ("Action".to_owned(), "DescribeInstanceAttribute".to_owned()),
            ("InstanceId".to_owned(), instance_id.to_owned()),
            ("Attribute".to_owned(), "userData".to_owned()),
        ];
        let text = self.call(&params).await?.map_err(|e| {
            self.unreachable(format!(
                "DescribeInstanceAttribute: {}: {}",
                e.code, e.message
            ))
        })?;
        let r: AttributeResponse = quick_xml::de::from_str(&text)
            .map_err(|e| self.unreachable(format!("unexpected answer: {e}")))?;
        let Some(b64) = r.user_data.and_then(|v| v.value) else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| self.unreachable(format!("user data is not base64: {e}")))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Records what a boot script reported (called by the broker's report endpoint after it checked the
    /// attempt token). The exit status is written last, atomically.
    pub async fn record_report(
        &self,
        key: &IdempotencyKey,
        report: &AttemptReport,
    ) -> Result<(), DriverError> {
        let dir = self.dir(key);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(DriverError::io("create directory", &dir))?;
        let tmp = dir.join("exit.tmp");
        tokio::fs::write(&tmp, report.exit_code.to_string())
            .await
            .map_err(DriverError::io("write", &tmp))?;
        let exit = dir.join("exit");
        tokio::fs::rename(&tmp, &exit)
            .await
            .map_err(DriverError::io("rename", &exit))
    }

    /// Records a chunk of an attempt's output as reported by its boot script (`stdout` or `stderr`).
    pub async fn record_output(
        &self,
        key: &IdempotencyKey,
        stream: OutputStream,
        bytes: &[u8],
    ) -> Result<(), DriverError> {
        let dir = self.dir(key);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(DriverError::io("create directory", &dir))?;
        let p = dir.join(stream.file());
        tokio::fs::write(&p, bytes)
            .await
            .map_err(DriverError::io("write", &p))
    }

    /// Whether `token` is the report token of attempt `key` (constant-time comparison).
    pub fn check_token(&self, key: &IdempotencyKey, token: &str) -> bool {
        let want = attempt_token(&self.config.report_secret, key);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    async fn report(&self, key: &IdempotencyKey) -> Result<Option<i32>, DriverError> {
        let p = self.dir(key).join("exit");
        match tokio::fs::read_to_string(&p).await {
            Ok(s) => Ok(Some(s.trim().parse().unwrap_or(-1))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DriverError::io("read", &p)(e)),
        }
    }

    async fn cancelled_by_hedge(&self, key: &IdempotencyKey) -> Result<bool, DriverError> {
        let p = self.dir(key).join("cancelled");
        tokio::fs::try_exists(&p)
            .await
            .map_err(DriverError::io("stat", &p))
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), DriverError> {
        let params = vec![
            ("Action".to_owned(), "TerminateInstances".to_owned()),
            ("InstanceId.1".to_owned(), instance_id.to_owned()),
        ];
        match self.call(&params).await? {
            Ok(_) => Ok(()),
            Err(e) if e.code == "InvalidInstanceID.NotFound" => Ok(()),
            Err(e) => {
                Err(self.unreachable(format!("TerminateInstances: {}: {}", e.code, e.message)))
            }
        }
    }

    /// The boot script: setup and run with the task's envs, then the output and the exit status reported.
    pub fn boot_script(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(&format!(
            "# Hedge attempt {key}: job {} attempt {}\n",
            spec.job, spec.attempt
        ));
        for (k, v) in spec
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("HEDGE_") && is_env_name(k))
        {
            s.push_str(&format!("export {k}={}\n", q(v)));
        }
        let accel = spec
            .accelerator
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        for (k, v) in [
            ("HEDGE_JOB_ID", spec.job.to_string()),
            ("HEDGE_ATTEMPT", spec.attempt.to_string()),
            ("HEDGE_IDEMPOTENCY_KEY", key.to_string()),
            ("HEDGE_PROVIDER", self.config.name.to_string()),
            ("HEDGE_TEAM", spec.team.to_string()),
            ("HEDGE_JOB_NAME", spec.name.clone().unwrap_or_default()),
            ("HEDGE_ACCELERATOR", accel),
            ("HEDGE_NUM_GPUS", spec.gpus_per_node.to_string()),
            ("HEDGE_NUM_NODES", spec.num_nodes.to_string()),
        ] {
            s.push_str(&format!("export {k}={}\n", q(&v)));
        }
        let base = format!(
            "{}/v1/attempts/{}",
            self.config.report_url.trim_end_matches('/'),
            key.as_str()
        );
        s.push_str(&format!(
            "hedge_token={}\n",
            q(&attempt_token(&self.config.report_secret, key))
        ));
        s.push_str("hedge_dir=$(mktemp -d)\ncd \"$hedge_dir\" || exit 1\n");
        s.push_str("hedge_task() {\n");
        if let Some(setup) = spec.setup.as_deref().filter(|s| !s.trim().is_empty()) {
            s.push_str(&format!("  ( {} ) || return $?\n", setup.trim_end()));
        }
        s.push_str(&format!("  ( {} )\n}}\n", spec.run.trim_end()));
        s.push_str("hedge_task > \"$hedge_dir/stdout.log\" 2> \"$hedge_dir/stderr.log\" < /dev/null\ncode=$?\n");
        s.push_str(&format!(
            "for stream in stdout stderr; do\n  tail -c 65536 \"$hedge_dir/$stream.log\" | curl -fsS -m 30 --retry 5 -X POST \
             -H \"Authorization: Bearer $hedge_token\" --data-binary @- {}\"/logs?stream=$stream\" >/dev/null\ndone\n",
            q(&base)
        ));
        s.push_str(&format!(
            "curl -fsS -m 30 --retry 10 -X POST -H \"Authorization: Bearer $hedge_token\" -H 'Content-Type: application/json' \
             -d \"{{\\\"exit_code\\\": $code}}\" {}/status >/dev/null\n",
            q(&base)
        ));
        s
    }

    /// Launches the attempt's instance. Public for tests; the broker calls [`Driver::submit`].
    async fn run_instance(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<InstanceInfo, DriverError> {
        let Some(instance_type) = spec.instance_type.clone() else {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: "no instance type was chosen for this launch".into(),
            });
        };
        let script = self.boot_script(key, spec);
        let mut p: Vec<(String, String)> = vec![
            ("Action".into(), "RunInstances".into()),
            ("ImageId".into(), self.config.image_id.clone()),
            ("InstanceType".into(), instance_type),
            ("MinCount".into(), "1".into()),
            ("MaxCount".into(), "1".into()),
            ("ClientToken".into(), key.as_str().to_owned()),
            (
                "UserData".into(),
                base64::engine::general_purpose::STANDARD.encode(script.as_bytes()),
            ),
            ("TagSpecification.1.ResourceType".into(), "instance".into()),
        ];
        let mut tags = vec![
            (TAG_KEY.to_owned(), key.as_str().to_owned()),
            ("hedge:job".to_owned(), spec.job.to_string()),
            ("hedge:attempt".to_owned(), spec.attempt.to_string()),
            ("hedge:team".to_owned(), spec.team.to_string()),
            ("Name".to_owned(), format!("hedge-{}", key.as_str())),
        ];
        if let Some(c) = &spec.commitment {
            tags.push(("hedge:commitment".to_owned(), c.clone()));
        }
        for (i, (k, v)) in tags.into_iter().enumerate() {
            p.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k));
            p.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v));
        }
        if spec.spot {
            p.push(("InstanceMarketOptions.MarketType".into(), "spot".into()));
            p.push((
                "InstanceMarketOptions.SpotOptions.SpotInstanceType".into(),
                "one-time".into(),
            ));
            p.push((
                "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior".into(),
                "terminate".into(),
            ));
        }
        if let Some(zone) = &spec.zone {
            p.push(("Placement.AvailabilityZone".into(), zone.clone()));
        }
        if let Some(r) = &spec.capacity_reservation {
            p.push((
                "CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId"
                    .into(),
                r.clone(),
            ));
        }
        match self.call(&p).await? {
            Ok(text) => {
                let r: RunInstancesResponse = quick_xml::de::from_str(&text).map_err(|e| {
                    self.unreachable(format!("unexpected RunInstances answer: {e}"))
                })?;
                r.instances_set
                    .items
                    .into_iter()
                    .next()
                    .map(InstanceInfo::from)
                    .ok_or_else(|| self.unreachable("RunInstances answered no instance"))
            }
            Err(e) if is_capacity_error(&e.code) => Err(DriverError::Rejected {
                provider: self.config.name.clone(),
                key: key.clone(),
                reason: format!("{}: {}", e.code, e.message),
            }),
            Err(e) => Err(self.unreachable(format!("RunInstances: {}: {}", e.code, e.message))),
        }
    }

    async fn observe_instances(
        &self,
        key: &IdempotencyKey,
        instances: &[InstanceInfo],
    ) -> Result<Observation, DriverError> {
        let report = self.report(key).await?;
        let cancelled = self.cancelled_by_hedge(key).await?;
        // The newest live instance wins; with none alive, the last one's fate.
        let i = instances
            .iter()
            .find(|i| !matches!(i.state.as_str(), "shutting-down" | "terminated"))
            .or(instances.last());
        match i {
            Some(i) => Ok(map_instance(
                &i.state,
                i.state_reason.as_deref(),
                report,
                cancelled,
            )),
            None => Ok(match report {
                Some(code) => Observation::Exited { code },
                None if cancelled => Observation::Cancelled,
                None => Observation::NotFound,
            }),
        }
    }
}

/// Which output stream a report chunk belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    fn file(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout.log",
            OutputStream::Stderr => "stderr.log",
        }
    }
}

fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn read_tail(path: &Path, max: u64) -> Result<(String, bool), DriverError> {
    match tokio::fs::read(path).await {
        Ok(b) => {
            let start = b.len().saturating_sub(max as usize);
            Ok((String::from_utf8_lossy(&b[start..]).into_owned(), start > 0))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), false)),
        Err(e) => Err(DriverError::io("read", path)(e)),
    }
}

#[async_trait::async_trait]
impl Driver for Ec2Driver {
    fn provider(&self) -> &ProviderId {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            accelerator: self.accelerator.clone(),
            gpus: u32::MAX,
            spot: Support::Yes,
            multi_node: Support::No {
                reason: "the EC2 driver launches one instance per attempt".into(),
            },
            logs: Support::Yes,
        }
    }

    async fn submit(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<Observation, DriverError> {
        // Idempotency: an instance tagged with this key is this attempt (moto ignores ClientToken).
        let existing = self.instances_of(key).await?;
        if !existing.is_empty() {
            return self.observe_instances(key, &existing).await;
        }
        if spec.num_nodes > 1 {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: format!(
                    "asks for {} nodes; the EC2 driver runs one instance per attempt",
                    spec.num_nodes
                ),
            });
        }
        if spec.run.trim().is_empty() {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: "the task has no run command".into(),
            });
        }
        crate::script::refuse_file_fields(&self.config.name, spec)?;
        let i = self.run_instance(key, spec).await?;
        Ok(map_instance(
            &i.state,
            i.state_reason.as_deref(),
            None,
            false,
        ))
    }

    async fn observe(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let instances = self.instances_of(key).await?;
        let o = self.observe_instances(key, &instances).await?;
        // Reported and still up: the work is done, stop paying for the instance.
        if let Observation::Exited { .. } = o {
            for i in instances
                .iter()
                .filter(|i| !matches!(i.state.as_str(), "shutting-down" | "terminated"))
            {
                self.terminate(&i.instance_id).await?;
            }
        }
        Ok(o)
    }

    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let instances = self.instances_of(key).await?;
        let o = self.observe_instances(key, &instances).await?;
        if o.is_terminal() {
            return Ok(o);
        }
        let dir = self.dir(key);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(DriverError::io("create directory", &dir))?;
        let marker = dir.join("cancelled");
        tokio::fs::write(&marker, b"")
            .await
            .map_err(DriverError::io("write", &marker))?;
        for i in instances.iter().filter(|i| i.state != "terminated") {
            self.terminate(&i.instance_id).await?;
        }
        // Confirmed only once EC2 reports the instance terminated.
        let instances = self.instances_of(key).await?;
        self.observe_instances(key, &instances).await
    }

    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError> {
        let dir = self.dir(key);
        if !tokio::fs::try_exists(&dir)
            .await
            .map_err(DriverError::io("stat", &dir))?
            && self.instances_of(key).await?.is_empty()
        {
            return Err(DriverError::NotFound {
                provider: self.config.name.clone(),
                key: key.clone(),
            });
        }
        let (stdout, t1) = read_tail(&dir.join("stdout.log"), max_bytes).await?;
        let (stderr, t2) = read_tail(&dir.join("stderr.log"), max_bytes).await?;
        Ok(Logs {
            stdout,
            stderr,
            truncated: t1 || t2,
        })
    }

    async fn probe(&self) -> Result<(), DriverError> {
        let params = vec![
            ("Action".to_owned(), "DescribeInstances".to_owned()),
            ("MaxResults".to_owned(), "5".to_owned()),
        ];
        match self.call(&params).await? {
            Ok(_) => Ok(()),
            Err(e) => {
                Err(self.unreachable(format!("DescribeInstances: {}: {}", e.code, e.message)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_states_map_onto_the_lifecycle() {
        use Observation::*;
        assert_eq!(map_instance("pending", None, None, false), Queued);
        assert_eq!(map_instance("running", None, None, false), Running);
        assert_eq!(
            map_instance("running", None, Some(0), false),
            Exited { code: 0 }
        );
        assert_eq!(
            map_instance("terminated", None, Some(3), false),
            Exited { code: 3 },
            "a report wins"
        );
        assert_eq!(map_instance("terminated", None, None, true), Cancelled);
        assert_eq!(
            map_instance("shutting-down", None, None, true),
            Running,
            "not confirmed before terminated"
        );
        let o = map_instance(
            "terminated",
            Some("Server.SpotInstanceTermination"),
            None,
            false,
        );
        assert!(
            matches!(&o, Lost { reason } if reason.contains("preempted") && reason.contains("SpotInstanceTermination")),
            "{o:?}"
        );
    }

    #[test]
    fn attempt_tokens_differ_per_key_and_secret() {
        let k1 = IdempotencyKey::parse("k1").unwrap();
        let k2 = IdempotencyKey::parse("k2").unwrap();
        assert_ne!(attempt_token("s", &k1), attempt_token("s", &k2));
        assert_ne!(attempt_token("s", &k1), attempt_token("t", &k1));
        assert_eq!(attempt_token("s", &k1).len(), 64);
    }

    #[test]
    fn parses_describe_instances() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet><item><reservationId>r-1</reservationId><instancesSet>
    <item><instanceId>i-abc</instanceId><imageId>ami-1</imageId>
      <instanceState><code>48</code><name>terminated</name></instanceState>
      <stateReason><code>Server.SpotInstanceTermination</code><message>Server.SpotInstanceTermination: Spot instance termination</message></stateReason>
      <instanceType>p5.48xlarge</instanceType><instanceLifecycle>spot</instanceLifecycle></item>
  </instancesSet></item></reservationSet>
</DescribeInstancesResponse>"#;
        let r: DescribeInstancesResponse = quick_xml::de::from_str(xml).unwrap();
        let i: Vec<InstanceInfo> = r
            .reservation_set
            .items
            .into_iter()
            .flat_map(|r| r.instances_set.items)
            .map(InstanceInfo::from)
            .collect();
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].instance_id, "i-abc");
        assert_eq!(i[0].state, "terminated");
        assert_eq!(i[0].lifecycle.as_deref(), Some("spot"));
        assert!(i[0].state_reason.as_deref().unwrap().contains("Spot"));
        let empty: DescribeInstancesResponse = quick_xml::de::from_str(
            "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>",
        )
        .unwrap();
        assert!(empty.reservation_set.items.is_empty());
    }
}
