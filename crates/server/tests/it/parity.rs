//! One intake for every way an update arrives: the same customer story (a message, its edit, a block and an
//! unblock, an update kind the inbox ignores, another message) told through a bot's webhook, a polled bot and a
//! personal account (the real MTProto client against the test peer) leaves the same stored state and the same
//! events, and counts the ignored kind on every path.

use crm_core::ids::EventSeq;
use crm_core::ports::EventLog;
use crm_testkit::app::spawn_app_on_peer;
use crm_testkit::mtproto::MtprotoPeer;
use crm_testkit::{TestApp, TestDatabase, eventually, on_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WEBHOOK_TOKEN: &str = "7009001001:AAParityWebhookBotTokenForTheSuite_ab";
const POLLED_TOKEN: &str = "7009001002:AAParityPolledBotTokenForTheSuite_abc";
const OWNER: i64 = 5_550_009;
const OWNER_PHONE: &str = "+491705550009";
const CUSTOMER: i64 = 7_770_009;

on_backends!([sqlite, mysql, postgres]: the_three_intake_paths_store_and_announce_the_same);

fn customer() -> Value {
    json!({"id": CUSTOMER, "is_bot": false, "first_name": "Carl"})
}

fn private_chat() -> Value {
    json!({"id": CUSTOMER, "type": "private", "first_name": "Carl"})
}

/// The customer story as Bot API updates, from `first_id` on, for the bot `bot_id`.
fn bot_story(first_id: i64, bot_id: i64) -> Vec<Value> {
    let bot = json!({"id": bot_id, "is_bot": true, "first_name": "Shop"});
    let membership = |id: i64, old: &str, new: &str| {
        json!({"update_id": id, "my_chat_member": {"chat": private_chat(), "from": customer(), "date": 1_700_000_010,
            "old_chat_member": {"user": bot, "status": old}, "new_chat_member": {"user": bot, "status": new}}})
    };
    vec![
        json!({"update_id": first_id, "message": {"message_id": 1, "date": 1_700_000_000, "chat": private_chat(),
            "from": customer(), "text": "hello"}}),
        json!({"update_id": first_id + 1, "edited_message": {"message_id": 1, "date": 1_700_000_000,
            "edit_date": 1_700_000_005, "chat": private_chat(), "from": customer(), "text": "hello, edited"}}),
        membership(first_id + 2, "member", "kicked"),
        membership(first_id + 3, "kicked", "member"),
        json!({"update_id": first_id + 4, "callback_query": {"id": "42", "from": customer(), "chat_instance": "1",
            "data": "pressed"}}),
        json!({"update_id": first_id + 5, "message": {"message_id": 2, "date": 1_700_000_020, "chat": private_chat(),
            "from": customer(), "text": "after"}}),
    ]
}

async fn connect_bot(app: &TestApp, admin: &str, token: &str, bot_id: i64, name: &str) -> i64 {
    app.bot_api.add_bot(token, bot_id, name);
    let created = app
        .post(
            "/api/accounts/",
            Some(admin),
            json!({"name": name, "account_type": "bot", "bot_token": token}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_i64().unwrap()
}

/// The chat of `account` with the customer once its story is complete (its last message arrived).
async fn finished_chat(app: &TestApp, admin: &str, account: i64) -> Value {
    eventually(&format!("account {account}'s story to arrive"), || async {
        let chats = app
            .get(&format!("/api/chats/?account={account}"), Some(admin))
            .await
            .body;
        let chat = chats["results"].as_array()?.first()?.clone();
        (chat["last_message_preview"] == "after").then_some(chat)
    })
    .await
}

/// What a path left: the chat's state, its messages, and the kinds (with blocked flags) of its events.
async fn outcome(app: &TestApp, admin: &str, account: i64) -> (Value, Vec<Value>, Vec<String>) {
    let chat = finished_chat(app, admin, account).await;
    let chat_id = chat["id"].as_i64().unwrap();
    let messages = app
        .get(&format!("/api/messages/by_chat/?chat_id={chat_id}"), Some(admin))
        .await
        .body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            json!({"text": m["text"], "edited": !m["edited_at"].is_null(), "direction": m["direction"],
            "status": m["status"]})
        })
        .collect();
    let log = eventually("the chat's events to be numbered", || async {
        let log = app.store.read_after(EventSeq(0), 10_000).await.ok()?;
        let mine: Vec<String> = log
            .iter()
            .filter(|event| event.chat_id == Some(chat_id))
            .map(|event| match event.kind.as_str() {
                "chat_updated" => format!("chat_updated(blocked={})", event.payload["chat"]["is_blocked"]),
                "message_updated" => format!("message_updated({})", event.payload["message"]["text"]),
                kind => kind.to_owned(),
            })
            .collect();
        (mine.last().map(String::as_str) == Some("chat_updated(blocked=false)") && mine.len() >= 8)
            .then_some(mine)
    })
    .await;
    let state = json!({"is_blocked": chat["is_blocked"], "message_count": chat["message_count"],
        "unread_count": chat["unread_count"], "title": chat["first_name"]});
    (state, messages, log)
}

async fn the_three_intake_paths_store_and_announce_the_same(database: TestDatabase) {
    let peer = MtprotoPeer::start().await.expect("the peer listens");
    peer.add_user(OWNER, OWNER_PHONE, "Olga", None);
    peer.add_user(CUSTOMER, "+491707770009", "Carl", None);
    let app = spawn_app_on_peer(database, &peer, |settings| {
        settings.account_lease_secs = 4;
        settings.account_watchdog_secs = 2;
    })
    .await;
    let admin = app.admin_token().await;

    // By webhook.
    let webhook = connect_bot(&app, &admin, WEBHOOK_TOKEN, 7_009_001_001, "Webhook shop").await;
    for update in bot_story(1, 7_009_001_001) {
        let response = app
            .client
            .post(app.url(&format!("/api/webhook/bot/{WEBHOOK_TOKEN}/")))
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // By polling.
    let polled = connect_bot(&app, &admin, POLLED_TOKEN, 7_009_001_002, "Polled shop").await;
    let switched = app
        .post(
            &format!("/api/accounts/{polled}/set_polling/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(switched.body["intake_mode"], "polling", "{}", switched.body);
    app.bot_api
        .push_updates(POLLED_TOKEN, bot_story(100, 7_009_001_002));

    // Through MTProto: the same story, as Telegram tells it to a personal account.
    let personal = app.log_in_on_peer(&admin, &peer, OWNER_PHONE).await;
    let hello = peer.customer_writes(OWNER, CUSTOMER, "hello");
    peer.edit(OWNER, hello, "hello, edited");
    peer.block(OWNER, CUSTOMER, true);
    peer.block(OWNER, CUSTOMER, false);
    peer.pin(OWNER, CUSTOMER, hello);
    peer.customer_writes(OWNER, CUSTOMER, "after");

    let by_webhook = outcome(&app, &admin, webhook).await;
    let by_polling = outcome(&app, &admin, polled).await;
    let by_mtproto = outcome(&app, &admin, personal).await;
    assert_eq!(
        by_webhook.2,
        [
            "new_message",
            "chat_updated(blocked=false)",
            "message_updated(\"hello, edited\")",
            "chat_updated(blocked=false)",
            "chat_updated(blocked=true)",
            "chat_updated(blocked=false)",
            "new_message",
            "chat_updated(blocked=false)",
        ],
        "the webhook's events"
    );
    assert_eq!(by_webhook.0["message_count"], 2);
    assert_eq!(by_webhook.1[1]["text"], "hello, edited");
    assert_eq!(by_webhook.1[1]["edited"], true);
    assert_eq!(
        by_polling, by_webhook,
        "polling stores and announces what the webhook does"
    );
    assert_eq!(
        by_mtproto, by_webhook,
        "a personal account stores and announces what a bot does"
    );

    let status = app.get("/api/system/status/", Some(&admin)).await.body;
    assert_eq!(status["ignored_updates"]["callback_query"], 2, "{status}");
    assert_eq!(status["ignored_updates"]["message_service"], 1, "{status}");
    app.stop().await;
}
