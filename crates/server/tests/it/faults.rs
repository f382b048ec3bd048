//! Faults, with the figures printed: `crm serve` killed with SIGKILL in the middle of a burst of webhook
//! updates, then started again while Telegram redelivers what was not acknowledged (and, as it may, some of
//! what was). Every acknowledged update is stored, every update is stored once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crm_store::entity::messages;
use crm_testkit::process::CrmProcess;
use crm_testkit::store::{OpenStore, SECRET_KEY};
use crm_testkit::{TestDatabase, eventually_within, on_every_backend};
use futures::future::join_all;
use sea_orm::{EntityTrait, PaginatorTrait, QuerySelect};
use serde_json::{Value, json};

const CRM: &str = env!("CARGO_BIN_EXE_crm");
const TOKEN: &str = "7013001300:AAFaultsBotTokenForTheTestSuite_abcde";
const WEBHOOK_SECRET: &str = "faults-webhook-secret";
const UPDATES: i64 = 10_000;
const SENDERS: i64 = 20;
const KILL_AFTER: usize = 2_000;

on_every_backend!(a_server_killed_mid_burst_loses_no_acknowledged_update);

fn environment(database: &TestDatabase) -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", database.url.clone()),
        ("SECRET_KEY", SECRET_KEY.to_owned()),
        ("CRM_ADMIN_PASSWORD", "faults-admin-password".to_owned()),
        ("DATA_DIR", database.dir.path().join("crm").display().to_string()),
        ("INSTANCE_ID", "faults".to_owned()),
        ("TELEGRAM_BOT_API_URL", "http://127.0.0.1:9".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
    ])
}

/// A Telegram-shaped update: bursts share their second, and go to 50 chats.
fn update(id: i64) -> Value {
    let peer = 90_000 + id % 50;
    json!({"update_id": id, "message": {"message_id": id, "date": 1_700_000_000 + id / 500,
        "chat": {"id": peer, "type": "private", "first_name": format!("Customer {peer}")},
        "from": {"id": peer, "is_bot": false, "first_name": format!("Customer {peer}")}, "text": format!("update {id}")}})
}

async fn deliver(client: &reqwest::Client, base_url: &str, account: i64, id: i64) -> Option<u16> {
    client
        .post(format!("{base_url}/api/webhook/bot/{account}/"))
        .header("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
        .json(&update(id))
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

async fn a_server_killed_mid_burst_loses_no_acknowledged_update(database: TestDatabase) {
    let environment = environment(&database);
    let server = CrmProcess::start(CRM, &environment).await;
    let store = database.store().await;
    let account = crm_testkit::fixtures::bot_account(&store, "Faults", Some(TOKEN), Some(WEBHOOK_SECRET))
        .await
        .id
        .0;

    // The burst: each sender delivers its share once, as fast as it is answered; the server dies under it.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (client, base_url) = (client.clone(), server.base_url.clone());
            let (acknowledged, errors) = (Arc::clone(&acknowledged), Arc::clone(&errors));
            tokio::spawn(async move {
                for id in (1..=UPDATES).filter(|id| id % SENDERS == sender) {
                    match deliver(&client, &base_url, account, id).await {
                        Some(200) => acknowledged.lock().unwrap().push(id),
                        Some(status) => errors.lock().unwrap().push((id, status)),
                        None => {}
                    }
                }
            })
        })
        .collect();
    eventually_within(
        std::time::Duration::from_secs(120),
        "the first acknowledged updates",
        || async { (acknowledged.lock().unwrap().len() >= KILL_AFTER).then_some(()) },
    )
    .await;
    server.kill().await;
    join_all(senders).await;
    let acknowledged_before: Vec<i64> = acknowledged.lock().unwrap().clone();
    let stored_at_kill = messages::Entity::find().count(store.db()).await.unwrap();
    assert!(
        stored_at_kill >= acknowledged_before.len() as u64,
        "{stored_at_kill} stored, but {} were acknowledged before the kill",
        acknowledged_before.len()
    );
    assert!(
        errors.lock().unwrap().is_empty(),
        "answers other than 200: {:?}",
        errors.lock().unwrap()
    );

    // Started again, the server gets what was not acknowledged, and the last 500 acknowledged ones again.
    let server = CrmProcess::start(CRM, &environment).await;
    let acknowledged_set: std::collections::HashSet<i64> = acknowledged_before.iter().copied().collect();
    let mut redelivered: Vec<i64> = (1..=UPDATES)
        .filter(|id| !acknowledged_set.contains(id))
        .collect();
    redelivered.extend(acknowledged_before.iter().rev().take(500));
    let resent = redelivered.len();
    let queue = Arc::new(Mutex::new(redelivered));
    let redeliveries: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, base_url, queue) = (client.clone(), server.base_url.clone(), Arc::clone(&queue));
            tokio::spawn(async move {
                let mut refused = Vec::new();
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some(id) = next else { break };
                    let status = deliver(&client, &base_url, account, id).await;
                    if status != Some(200) {
                        refused.push((id, status));
                    }
                }
                refused
            })
        })
        .collect();
    let refused: Vec<(i64, Option<u16>)> = join_all(redeliveries)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(refused.is_empty(), "redeliveries refused: {refused:?}");

    let stored = messages::Entity::find().count(store.db()).await.unwrap();
    let distinct: Vec<(i64, i64)> = messages::Entity::find()
        .select_only()
        .column(messages::Column::ChatId)
        .column(messages::Column::TelegramMessageId)
        .distinct()
        .into_tuple::<(i64, Option<i64>)>()
        .all(store.db())
        .await
        .unwrap()
        .into_iter()
        .map(|(chat, id)| (chat, id.unwrap_or_default()))
        .collect();
    println!(
        "| kill -9 during {UPDATES} webhook updates | {} | sent {UPDATES}; acknowledged before the kill {}; \
         stored at the kill {stored_at_kill}; redelivered {resent}; stored {stored}; duplicates {} |",
        store.backend().as_str(),
        acknowledged_before.len(),
        stored - distinct.len() as u64,
    );
    assert_eq!(stored, UPDATES as u64, "every update stored");
    assert_eq!(distinct.len() as u64, stored, "each once");
    server.stop().await;
    store.close().await.unwrap();
}
