//! The seeded database: one bot account with a webhook secret, `chats` private chats (peers from
//! [`FIRST_PEER`]) and `messages` messages spread over them, inserted in batches straight through the store.

use std::time::Instant;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use crm_core::account::{AccountStatus, AccountType};
use crm_core::chat::ChatType;
use crm_core::message::{Direction, MessageStatus, MessageType};
use crm_core::secrets::Sensitive;
use crm_store::entity::{chats, messages};
use crm_store::repo::accounts::{self, NewAccount};
use crm_store::{Db, Store};
use sea_orm::{EntityTrait, QueryOrder, Set};
use serde_json::json;

use crate::report::progress;
use crate::traffic::FIRST_PEER;

/// The bot's token (never sent anywhere but the fake Bot API).
pub const BOT_TOKEN: &str = "7999999999:AABenchmarkBotTokenForLoadTests_abcdefg";
/// The bot's Telegram id.
pub const BOT_ID: i64 = 7_999_999_999;
/// The bot's webhook secret.
pub const SECRET: &str = "benchmark-webhook-secret";

/// What the seed created.
pub struct Seeded {
    /// The bot account.
    pub account_id: i64,
    /// Chat ids, in peer order (chat `n` has peer `FIRST_PEER + n`).
    pub chat_ids: Vec<i64>,
}

/// Creates the bot account, the chats and their messages.
pub async fn seed(store: &Store, chats_wanted: i64, messages_wanted: i64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let account = accounts::create(
        store,
        NewAccount {
            name: "Bench bot".into(),
            account_type: AccountType::Bot,
            status: AccountStatus::Active,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: Some(Sensitive(BOT_TOKEN.into())),
            bot_username: Some("bench_bot".into()),
            webhook_secret: Some(Sensitive(SECRET.into())),
            telegram_user_id: Some(BOT_ID),
            forward_url: None,
        },
    )
    .await?;
    let chats_wanted = chats_wanted.max(1);
    let per_chat = messages_wanted / chats_wanted;
    let now = Utc::now();
    let base = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .context("base time")?;
    let rows: Vec<chats::ActiveModel> = (0..chats_wanted)
        .map(|n| chats::ActiveModel {
            account_id: Set(account.id.0),
            peer_id: Set(FIRST_PEER + n),
            chat_type: Set(Db(ChatType::Private)),
            first_name: Set(Some(format!("Customer {n}"))),
            username: Set(Some(format!("customer_{n}"))),
            unread_count: Set(0),
            message_count: Set(i32::try_from(per_chat).unwrap_or(i32::MAX)),
            last_message_at: Set(Some(base + chrono::Duration::seconds(per_chat))),
            last_message_outgoing: Set(false),
            is_blocked: Set(false),
            has_orphan_replies: Set(false),
            metadata: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for batch in rows.chunks(500) {
        chats::Entity::insert_many(batch.to_vec())
            .exec(store.writes())
            .await?;
    }
    let chat_ids: Vec<i64> = chats::Entity::find()
        .order_by_asc(chats::Column::PeerId)
        .all(store.db())
        .await?
        .into_iter()
        .filter(|c| c.account_id == account.id.0)
        .map(|c| c.id)
        .collect();
    let mut inserted = 0usize;
    let mut batch = Vec::with_capacity(1_000);
    for (index, chat_id) in (0i64..).zip(&chat_ids) {
        for m in 0..per_chat {
            let outgoing = m % 3 == 0;
            batch.push(messages::ActiveModel {
                chat_id: Set(*chat_id),
                telegram_message_id: Set(Some(m + 1)),
                direction: Set(Db(if outgoing {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                })),
                message_type: Set(Db(MessageType::Text)),
                text: Set(Some(format!(
                    "Seeded message {m} of chat {index}: where is my order?"
                ))),
                sender_id: Set(Some(if outgoing { BOT_ID } else { FIRST_PEER + index })),
                sender_name: Set(Some(if outgoing {
                    "Bench bot".to_owned()
                } else {
                    format!("Customer {index}")
                })),
                status: Set(Db(if outgoing {
                    MessageStatus::Sent
                } else {
                    MessageStatus::Received
                })),
                telegram_date: Set(base + chrono::Duration::seconds(m)),
                is_deleted: Set(false),
                metadata: Set(json!({})),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            });
            if batch.len() == 1_000 {
                inserted += batch.len();
                messages::Entity::insert_many(std::mem::take(&mut batch))
                    .exec(store.writes())
                    .await?;
                if inserted.is_multiple_of(20_000) {
                    progress(format!("seeded {inserted} messages"));
                }
            }
        }
    }
    if !batch.is_empty() {
        messages::Entity::insert_many(batch).exec(store.writes()).await?;
    }
    progress(format!(
        "seeded {} chats and {} messages in {:.1} s",
        chat_ids.len(),
        per_chat * i64::try_from(chat_ids.len()).unwrap_or(0),
        started.elapsed().as_secs_f64()
    ));
    Ok(Seeded {
        account_id: account.id.0,
        chat_ids,
    })
}
