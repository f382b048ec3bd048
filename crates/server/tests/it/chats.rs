//! The chat list as admins and operators see it: ordering, previews, filters, unread counting since the last
//! read, and operator isolation (404 for chats not assigned to them).

use crm_testkit::{TestApp, TestDatabase, on_every_backend, spawn_app};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

const TOKEN: &str = "5550002223:AAChatListBotTokenForTests_abcdefghijk";
const SECRET: &str = "chat-list-webhook-secret";

on_every_backend!(chat_list_order_filters_and_isolation);

async fn deliver(
    app: &TestApp,
    account_id: crm_core::ids::AccountId,
    peer: i64,
    name: &str,
    message_id: i64,
    date: i64,
    text: &str,
) {
    let update_id = peer * 1000 + message_id;
    let update = json!({ "update_id": update_id, "message": { "message_id": message_id, "date": date,
        "chat": { "id": peer, "type": "private", "first_name": name, "username": name.to_lowercase() },
        "from": { "id": peer, "is_bot": false, "first_name": name }, "text": text } });
    assert_eq!(
        app.deliver_update(account_id, SECRET, &update).await,
        StatusCode::OK
    );
}

fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["first_name"].as_str().unwrap().to_owned())
        .collect()
}

async fn chat_list_order_filters_and_isolation(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (_, pavel) = app.create_operator(&admin, "pavel").await;
    let bot = crm_testkit::fixtures::bot_account(&app.store, "Shop bot", Some(TOKEN), Some(SECRET))
        .await
        .id;
    deliver(&app, bot, 101, "Anna", 1, 1_700_000_100, "first question").await;
    deliver(&app, bot, 102, "Boris", 1, 1_700_000_300, "100% urgent").await;
    deliver(&app, bot, 103, "Clara", 1, 1_700_000_200, "hello").await;
    deliver(&app, bot, 101, "Anna", 2, 1_700_000_400, "second question from Anna, which is long enough to be cut in the preview because previews stop at one hundred characters")
        .await;

    let all = app.get("/api/chats/", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["count"], 3);
    assert_eq!(
        names(&all.body),
        ["Anna", "Boris", "Clara"],
        "newest activity first"
    );
    let anna = &all.body["results"][0];
    assert_eq!(anna["unread_count"], 2);
    assert_eq!(anna["message_count"], 2);
    assert_eq!(anna["telegram_id"], 101);
    assert_eq!(
        anna["telegram_account"],
        json!({"id": bot, "name": "Shop bot", "account_type": "bot", "status": "active"})
    );
    assert_eq!(anna["telegram_account_name"], "Shop bot");
    assert_eq!(
        anna["last_message_preview"].as_str().unwrap().chars().count(),
        100
    );
    assert!(
        anna["last_message_preview"]
            .as_str()
            .unwrap()
            .starts_with("second question from Anna")
    );
    assert_eq!(anna["last_message_data"]["is_outgoing"], false);
    assert!(anna["assigned_operator_id"].is_null());
    assert!(
        !all.body.to_string().contains(TOKEN) && !all.body.to_string().contains(SECRET),
        "no secrets in the list"
    );

    // Filters.
    assert_eq!(
        names(&app.get("/api/chats/?search=BOR", Some(&admin)).await.body),
        ["Boris"]
    );
    assert_eq!(
        names(&app.get("/api/chats/?search=%25", Some(&admin)).await.body),
        Vec::<String>::new(),
        "% is literal"
    );
    assert_eq!(
        app.get(&format!("/api/chats/?account={bot}"), Some(&admin))
            .await
            .body["count"],
        3
    );
    assert_eq!(
        app.get("/api/chats/?account=999999", Some(&admin)).await.body["count"],
        0
    );
    assert_eq!(
        app.get("/api/chats/?assigned_only=1", Some(&admin)).await.body["count"],
        0
    );
    let bad = app.get("/api/chats/?unread=maybe", Some(&admin)).await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let bad = app.get("/api/chats/?account=abc", Some(&admin)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Operators see only what is assigned to them.
    let anna_id = anna["id"].as_i64().unwrap();
    let assigned = app
        .post(
            &format!("/api/chats/{anna_id}/assign/"),
            Some(&admin),
            json!({"operator_id": olga_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(names(&app.get("/api/chats/", Some(&olga)).await.body), ["Anna"]);
    assert_eq!(app.get("/api/chats/", Some(&pavel)).await.body["count"], 0);
    assert_eq!(
        app.get(&format!("/api/chats/{anna_id}/"), Some(&olga)).await.body["assigned_operator_id"],
        olga_id
    );
    let other = all.body["results"][1]["id"].as_i64().unwrap();
    for (token, chat) in [(&pavel, anna_id), (&olga, other)] {
        assert_eq!(
            app.get(&format!("/api/chats/{chat}/"), Some(token)).await.status,
            StatusCode::NOT_FOUND
        );
        let refused = app
            .post(
                &format!("/api/chats/{chat}/mark_as_read/"),
                Some(token),
                json!({}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.get(&format!("/api/chats/{anna_id}/"), Some(&admin))
            .await
            .body["unread_count"],
        2,
        "refused calls changed nothing"
    );
    assert_eq!(
        app.get("/api/chats/", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Unread counts messages since the last read, not all inbound messages ever.
    let read = app
        .post(
            &format!("/api/chats/{anna_id}/mark_as_read/"),
            Some(&olga),
            json!({}),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["status"], "success");
    assert_eq!(read.body["chat"]["unread_count"], 0);
    assert_eq!(
        app.get("/api/chats/?unread=1", Some(&admin)).await.body["count"],
        2
    );
    deliver(&app, bot, 101, "Anna", 3, 1_700_000_500, "third").await;
    let after = app.get(&format!("/api/chats/{anna_id}/"), Some(&olga)).await.body;
    assert_eq!(
        (after["unread_count"].as_i64(), after["message_count"].as_i64()),
        (Some(1), Some(3))
    );
    assert_eq!(after["last_message_preview"], "third");
    app.stop().await;
}

on_every_backend!(assignments_follow_max_chats_and_transfers);

async fn assignments_follow_max_chats_and_transfers(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (pavel_id, pavel) = app.create_operator(&admin, "pavel").await;
    let bot = crm_testkit::fixtures::bot_account(&app.store, "Shop bot", Some(TOKEN), Some(SECRET))
        .await
        .id;
    deliver(&app, bot, 201, "Anna", 1, 1_700_000_100, "a").await;
    deliver(&app, bot, 202, "Boris", 1, 1_700_000_200, "b").await;
    let list = app.get("/api/chats/", Some(&admin)).await.body;
    let boris = list["results"][0]["id"].as_i64().unwrap();
    let anna = list["results"][1]["id"].as_i64().unwrap();
    let patch = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/operators/{olga_id}/"),
            Some(&admin),
            Some(json!({"max_chats": 1})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);

    let given = app
        .post(
            &format!("/api/chats/{anna}/assign/"),
            Some(&admin),
            json!({"operator_id": olga_id}),
        )
        .await;
    assert_eq!(
        (
            given.status,
            given.body["status"].as_str(),
            given.body["operator_id"].as_i64()
        ),
        (StatusCode::OK, Some("assigned"), Some(olga_id))
    );
    assert_eq!(names(&app.get("/api/chats/", Some(&olga)).await.body), ["Anna"]);
    let full = app
        .post(
            &format!("/api/chats/{boris}/assign/"),
            Some(&admin),
            json!({"operator_id": olga_id}),
        )
        .await;
    assert_eq!(
        (full.status, full.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("max_chats_reached"))
    );
    assert_eq!(full.body["error"], "Maximum chats limit reached (1)");
    let olga_row = app
        .get(&format!("/api/operators/{olga_id}/"), Some(&admin))
        .await
        .body;
    assert_eq!(olga_row["current_chats"], 1);

    // Operators act only on their own chats.
    assert_eq!(
        app.post(&format!("/api/chats/{boris}/assign/"), Some(&pavel), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let push = app
        .post(
            &format!("/api/chats/{anna}/assign/"),
            Some(&olga),
            json!({"operator_id": pavel_id}),
        )
        .await;
    assert_eq!(push.status, StatusCode::FORBIDDEN);
    let own = app
        .client
        .post(app.url(&format!("/api/chats/{anna}/assign/")))
        .header("Authorization", format!("Token {olga}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.status(),
        StatusCode::OK,
        "assigning one's own chat again, with no body, is fine"
    );

    // An admin transfers the chat; the old holder loses it at once.
    let moved = app
        .post(
            &format!("/api/chats/{anna}/assign/"),
            Some(&admin),
            json!({"operator_id": pavel_id}),
        )
        .await;
    assert_eq!(moved.body["operator_id"], pavel_id);
    assert_eq!(
        app.get(&format!("/api/chats/{anna}/"), Some(&olga)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/chats/{anna}/"), Some(&pavel)).await.body["assigned_operator_id"],
        pavel_id
    );
    let history = crm_store::entity::chat_assignments::Entity::find()
        .all(app.store.db())
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "the earlier assignment is kept as history");
    assert!(
        history
            .iter()
            .any(|a| a.user_id == olga_id && a.unassigned_at.is_some() && a.active_chat_id.is_none())
    );

    let released = app
        .post(&format!("/api/chats/{anna}/unassign/"), Some(&pavel), json!({}))
        .await;
    assert_eq!(released.body["status"], "unassigned");
    assert_eq!(app.get("/api/chats/", Some(&pavel)).await.body["count"], 0);
    assert_eq!(
        app.post(&format!("/api/chats/{anna}/unassign/"), Some(&admin), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Only active users can hold chats.
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/operators/{pavel_id}/"),
        Some(&admin),
        Some(json!({"is_active": false})),
    )
    .await;
    let inactive = app
        .post(
            &format!("/api/chats/{boris}/assign/"),
            Some(&admin),
            json!({"operator_id": pavel_id}),
        )
        .await;
    assert_eq!(inactive.status, StatusCode::BAD_REQUEST);
    let junk = app
        .post(
            &format!("/api/chats/{boris}/assign/"),
            Some(&admin),
            json!({"operator_id": "x"}),
        )
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    app.stop().await;
}
