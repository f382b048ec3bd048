//! Sending a message through the Bot API: `sendMessage`, or the send method of its media kind with the file
//! uploaded as multipart, replying with `reply_parameters`; Bot API errors become core's [`SendError`]s.

use chrono::{DateTime, Utc};
use crm_core::ids::TelegramMessageId;
use crm_core::message::MessageType;
use crm_core::outbound::{OutgoingMessage, SendError, SentMessage};
use serde_json::{Value, json};

use crate::client::{BotApi, BotApiError, Upload};

/// Telegram's limit for a caption; longer text goes in a separate message first.
pub const MAX_CAPTION: usize = 1024;

fn method_for(kind: MessageType) -> (&'static str, &'static str) {
    match kind {
        MessageType::Photo => ("sendPhoto", "photo"),
        MessageType::Video => ("sendVideo", "video"),
        MessageType::Audio => ("sendAudio", "audio"),
        MessageType::Voice => ("sendVoice", "voice"),
        _ => ("sendDocument", "document"),
    }
}

fn send_error(error: BotApiError) -> SendError {
    match error {
        BotApiError::RetryAfter(wait, description) => SendError::RetryAfter(wait, description),
        BotApiError::Rejected(code, description) => {
            SendError::Permanent(format!("Telegram refused ({code}): {description}"))
        }
        BotApiError::NoAnswer(description) => SendError::Ambiguous(description),
        other if other.is_transient() => SendError::Transient(other.to_string()),
        other => SendError::Permanent(other.to_string()),
    }
}

fn acknowledgement(result: &Value) -> Result<SentMessage, SendError> {
    // Telegram answered ok, so it has the message: an answer we cannot read is no reason to send it again.
    let telegram_message_id = result
        .get("message_id")
        .and_then(Value::as_i64)
        .map(TelegramMessageId);
    let date = result
        .get("date")
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_else(Utc::now);
    Ok(SentMessage {
        telegram_message_id,
        date,
    })
}

/// Sends `message` as the bot with `token`.
pub async fn send(api: &BotApi, token: &str, message: OutgoingMessage) -> Result<SentMessage, SendError> {
    let reply = message
        .reply_to_telegram_id
        .map(|id| json!({ "message_id": id.0, "allow_sending_without_reply": true }));
    let result = match message.media {
        None => {
            let params = json!({ "chat_id": message.peer_id.0, "text": message.text.unwrap_or_default(), "reply_parameters": reply });
            api.call(token, "sendMessage", &params).await
        }
        Some(media) => {
            let (method, field) = method_for(media.kind);
            let caption = message.text.filter(|t| !t.is_empty());
            if caption.as_ref().is_some_and(|c| c.chars().count() > MAX_CAPTION) {
                return Err(SendError::Permanent(format!(
                    "a caption may have at most {MAX_CAPTION} characters"
                )));
            }
            let fields = json!({ "chat_id": message.peer_id.0, "caption": caption,
                "reply_parameters": reply.map(|r| r.to_string()) });
            let upload = Upload {
                bytes: media.bytes,
                file_name: media.file_name,
                content_type: media.content_type,
            };
            api.send_upload(token, method, field, upload, &fields).await
        }
    };
    acknowledgement(&result.map_err(send_error)?)
}
