//! A small Bot API client over `reqwest`, pointed at a configurable base URL (Telegram's, a self-hosted Bot
//! API server, or a test double). Errors are sorted by what the caller should do: wait `retry_after`, retry
//! with backoff, or give up. The bot token is part of every URL, so URLs never reach errors or logs.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

/// Telegram's public Bot API.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";
/// Largest file the public Bot API lets a bot download.
pub const MAX_DOWNLOAD_BYTES: u64 = 20 * 1024 * 1024;

/// Why a Bot API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotApiError {
    /// 429: flood control; wait this long.
    #[error("Telegram asks to retry after {0:?}: {1}")]
    RetryAfter(Duration, String),
    /// 5xx: Telegram's side failed; retry with backoff.
    #[error("Telegram server error {0}: {1}")]
    Server(u16, String),
    /// 4xx other than 429: the request cannot succeed as is (bad request, bot blocked, bad token).
    #[error("Telegram refused the request ({0}): {1}")]
    Rejected(u16, String),
    /// The request never reached Telegram (no connection could be made).
    #[error("Telegram unreachable: {0}")]
    Network(String),
    /// The request may have reached Telegram, but no answer came back (a timeout or a broken connection after
    /// sending). Whatever it asked for may or may not have happened.
    #[error("no answer from Telegram: {0}")]
    NoAnswer(String),
    /// An answer we cannot read, or a file over the size limit.
    #[error("unexpected answer from Telegram: {0}")]
    Invalid(String),
}

impl BotApiError {
    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BotApiError::RetryAfter(..)
                | BotApiError::Server(..)
                | BotApiError::Network(_)
                | BotApiError::NoAnswer(_)
        )
    }
}

/// Sorts a transport failure: a failed connection means the request was never sent; anything later (a
/// timeout, a connection broken mid-request, an unreadable answer) means it may have been.
fn network(error: reqwest::Error) -> BotApiError {
    let connect = error.is_connect();
    let text = error.without_url().to_string();
    if connect {
        BotApiError::Network(text)
    } else {
        BotApiError::NoAnswer(text)
    }
}

/// The bot itself, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BotUser {
    /// The bot's Telegram user id.
    pub id: i64,
    /// Its @username.
    pub username: Option<String>,
    /// Its display name.
    pub first_name: String,
}

/// A file Telegram can serve, from `getFile`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileInfo {
    /// Path to download it from.
    pub file_path: Option<String>,
    /// Size in bytes.
    pub file_size: Option<u64>,
}

/// A file to upload with a send method.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Contents.
    pub bytes: Vec<u8>,
    /// File name shown to the recipient.
    pub file_name: String,
    /// MIME type.
    pub content_type: String,
}

/// Calls the Bot API.
#[derive(Debug, Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base_url: String,
}

impl BotApi {
    /// A client for `base_url` with a per-request `timeout` (long polls add their own wait to it).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, BotApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| BotApiError::Invalid(error.without_url().to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    fn method_url(&self, token: &str, method: &str) -> String {
        format!("{}/bot{token}/{method}", self.base_url)
    }

    async fn read(response: reqwest::Response) -> Result<Value, BotApiError> {
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(|error| {
            if status >= 500 {
                BotApiError::Server(status, "no JSON body".into())
            } else {
                BotApiError::Invalid(error.without_url().to_string())
            }
        })?;
        if body.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(body.get("result").cloned().unwrap_or(Value::Null));
        }
        let code = body
            .get("error_code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status);
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("no description")
            .to_owned();
        let retry_after = body.pointer("/parameters/retry_after").and_then(Value::as_u64);
        Err(match (code, retry_after) {
            (429, Some(seconds)) | (_, Some(seconds)) => {
                BotApiError::RetryAfter(Duration::from_secs(seconds), description)
            }
            (429, None) => BotApiError::RetryAfter(Duration::from_secs(1), description),
            (500.., _) => BotApiError::Server(code, description),
            _ => BotApiError::Rejected(code, description),
        })
    }

    /// Calls `method` with JSON `params`; returns its `result`.
    pub async fn call(&self, token: &str, method: &str, params: &Value) -> Result<Value, BotApiError> {
        let response = self
            .http
            .post(self.method_url(token, method))
            .json(params)
            .send()
            .await
            .map_err(network)?;
        Self::read(response).await
    }

    /// `getMe`: checks the token and names the bot.
    pub async fn get_me(&self, token: &str) -> Result<BotUser, BotApiError> {
        let result = self.call(token, "getMe", &json!({})).await?;
        serde_json::from_value(result).map_err(|error| BotApiError::Invalid(error.to_string()))
    }

    /// `setWebhook` with Telegram's secret header and the update kinds we handle.
    pub async fn set_webhook(
        &self,
        token: &str,
        url: &str,
        secret: &str,
        allowed_updates: &[&str],
    ) -> Result<(), BotApiError> {
        let params = json!({ "url": url, "secret_token": secret, "allowed_updates": allowed_updates });
        self.call(token, "setWebhook", &params).await.map(drop)
    }

    /// `deleteWebhook`, keeping pending updates for polling.
    pub async fn delete_webhook(&self, token: &str) -> Result<(), BotApiError> {
        self.call(token, "deleteWebhook", &json!({ "drop_pending_updates": false }))
            .await
            .map(drop)
    }

    /// `getUpdates` from `offset`, waiting up to `wait` for new ones.
    pub async fn get_updates(
        &self,
        token: &str,
        offset: Option<i64>,
        wait: Duration,
        allowed_updates: &[&str],
    ) -> Result<Vec<Value>, BotApiError> {
        let params =
            json!({ "offset": offset, "timeout": wait.as_secs(), "allowed_updates": allowed_updates });
        let response = self
            .http
            .post(self.method_url(token, "getUpdates"))
            .json(&params)
            .timeout(wait + Duration::from_secs(15))
            .send()
            .await
            .map_err(network)?;
        match Self::read(response).await? {
            Value::Array(updates) => Ok(updates),
            other => Err(BotApiError::Invalid(format!("getUpdates returned {other}"))),
        }
    }

    /// A send method with a file uploaded as multipart `field`; `fields` are the other parameters.
    pub async fn send_upload(
        &self,
        token: &str,
        method: &str,
        field: &str,
        upload: Upload,
        fields: &Value,
    ) -> Result<Value, BotApiError> {
        let part = reqwest::multipart::Part::bytes(upload.bytes)
            .file_name(upload.file_name)
            .mime_str(&upload.content_type)
            .map_err(|error| BotApiError::Invalid(error.without_url().to_string()))?;
        let mut form = reqwest::multipart::Form::new().part(field.to_owned(), part);
        if let Some(object) = fields.as_object() {
            for (key, value) in object {
                let text = match value {
                    Value::Null => continue,
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                form = form.text(key.clone(), text);
            }
        }
        let response = self
            .http
            .post(self.method_url(token, method))
            .multipart(form)
            .send()
            .await
            .map_err(network)?;
        Self::read(response).await
    }

    /// `getFile`: where to download a file from.
    pub async fn get_file(&self, token: &str, file_id: &str) -> Result<FileInfo, BotApiError> {
        let result = self
            .call(token, "getFile", &json!({ "file_id": file_id }))
            .await?;
        serde_json::from_value(result).map_err(|error| BotApiError::Invalid(error.to_string()))
    }

    /// Downloads a file by its `file_path`, refusing more than `max_bytes`.
    pub async fn download(
        &self,
        token: &str,
        file_path: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, BotApiError> {
        let url = format!(
            "{}/file/bot{token}/{}",
            self.base_url,
            file_path.trim_start_matches('/')
        );
        let response = self.http.get(url).send().await.map_err(network)?;
        let status = response.status().as_u16();
        if status >= 500 {
            return Err(BotApiError::Server(status, "file download failed".into()));
        }
        if status != 200 {
            return Err(BotApiError::Rejected(status, "file download refused".into()));
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(network)?;
            if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(BotApiError::Invalid(format!(
                    "file larger than {max_bytes} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}
