//! Health answers for load balancers (503 when the database is gone, healthy again when it is back), the
//! admin status counts, and the OpenAPI document.

use chrono::Utc;
use crm_core::account::{AccountStatus, AccountType, IntakeMode};
use crm_core::chat::ChatType;
use crm_core::jobs::{JobPayload, JobRequest};
use crm_core::message::{Direction, MessageStatus, MessageType};
use crm_store::Db;
use crm_testkit::app::spawn_app_with;
use crm_testkit::{FaultProxy, TestBackend, TestDatabase, on_every_backend, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

on_every_backend!(
    health_turns_unhealthy_when_the_database_is_unreachable,
    system_status_counts_what_is_stored
);

async fn wait_for_health(app: &crm_testkit::TestApp, expected: StatusCode) -> serde_json::Value {
    // Bounded: the health check itself times out after 3 s, so a few calls suffice.
    for _ in 0..10 {
        let reply = app.get("/api/health/", None).await;
        if reply.status == expected {
            return reply.body;
        }
    }
    panic!("health never became {expected}");
}

async fn health_turns_unhealthy_when_the_database_is_unreachable(database: TestDatabase) {
    if database.backend == TestBackend::Sqlite {
        let app = spawn_app(database).await;
        let healthy = app.get("/api/health/", None).await;
        assert_eq!(healthy.status, StatusCode::OK);
        assert_eq!(healthy.body["status"], "healthy");
        assert_eq!(healthy.body["database"], "ok");
        assert!(chrono::DateTime::parse_from_rfc3339(healthy.body["timestamp"].as_str().unwrap()).is_ok());
        // An embedded database is unreachable once its pool is gone.
        app.store.close().await.unwrap();
        let sick = app.get("/api/health/", None).await;
        assert_eq!(sick.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(sick.body["status"], "unhealthy");
        assert_eq!(sick.body["database"], "unavailable");
        // Other endpoints answer 503 with the JSON error shape, never a 500.
        let login = app
            .post(
                "/api/api-token-auth/",
                None,
                json!({"username": "admin", "password": "x"}),
            )
            .await;
        assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(login.body["code"], "unavailable");
        return;
    }
    let url = url::Url::parse(&database.url).unwrap();
    let target = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let target = tokio::net::lookup_host(target).await.unwrap().next().unwrap();
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut through_proxy = url.clone();
    through_proxy.set_host(Some("127.0.0.1")).unwrap();
    through_proxy.set_port(Some(proxy.local_addr.port())).unwrap();
    let proxied = through_proxy.to_string();
    let app = spawn_app_with(database, |settings| settings.database_url = Some(proxied)).await;

    assert_eq!(wait_for_health(&app, StatusCode::OK).await["database"], "ok");
    proxy.cut();
    let sick = wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(sick["status"], "unhealthy");
    assert_eq!(sick["database"], "unavailable");
    proxy.restore();
    let back = wait_for_health(&app, StatusCode::OK).await;
    assert_eq!(back["status"], "healthy");
    app.stop().await;
}

async fn system_status_counts_what_is_stored(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let store = &app.store;
    let now = Utc::now();
    let account = crm_store::entity::accounts::ActiveModel {
        name: Set("Shop".into()),
        account_type: Set(Db(AccountType::Bot)),
        status: Set(Db(AccountStatus::Active)),
        error_count: Set(0),
        intake_mode: Set(Db(IntakeMode::None)),
        include_groups: Set(false),
        include_channels: Set(false),
        mark_read_in_telegram: Set(true),
        enabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.db())
    .await
    .unwrap();
    let chat = crm_store::entity::chats::ActiveModel {
        account_id: Set(account.id),
        peer_id: Set(42),
        chat_type: Set(Db(ChatType::Private)),
        unread_count: Set(0),
        message_count: Set(0),
        is_blocked: Set(false),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.db())
    .await
    .unwrap();
    for (status, direction) in [
        (MessageStatus::Received, Direction::Inbound),
        (MessageStatus::Failed, Direction::Outbound),
        (MessageStatus::Sent, Direction::Outbound),
    ] {
        crm_store::entity::messages::ActiveModel {
            chat_id: Set(chat.id),
            direction: Set(Db(direction)),
            message_type: Set(Db(MessageType::Text)),
            status: Set(Db(status)),
            telegram_date: Set(now),
            is_deleted: Set(false),
            metadata: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(store.db())
        .await
        .unwrap();
    }
    crm_store::repo::jobs::enqueue(
        store.db(),
        JobRequest {
            run_at: now + chrono::Duration::hours(1),
            ..JobRequest::new(
                JobPayload::Housekeeping {
                    date: "2026-01-01".into(),
                },
                now,
            )
        },
    )
    .await
    .unwrap();

    let status = app.get("/api/system/status/", Some(&admin)).await;
    assert_eq!(status.status, StatusCode::OK);
    let body = status.body;
    assert_eq!(body["accounts"], json!({"total": 1, "by_status": {"active": 1}}));
    assert_eq!(body["chats"], 1);
    assert_eq!(body["messages"], json!({"total": 3, "failed": 1}));
    assert!(body["queue_depth"].as_u64().unwrap() >= 1);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let expected_backend = match app.database.backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::MySql => "mysql",
        TestBackend::Postgres => "postgres",
    };
    assert_eq!(body["backend"], expected_backend);
    assert!(body["uptime_seconds"].is_u64());
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let database = TestDatabase::create(TestBackend::Sqlite).await.unwrap();
    let app = spawn_app(database).await;
    let reply = app.get("/api/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/health/", "get"),
        ("/api/system/status/", "get"),
        ("/api/api-token-auth/", "post"),
        ("/api/auth/logout/", "post"),
        ("/api/auth/me/", "get"),
        ("/api/operators/", "get"),
        ("/api/operators/", "post"),
        ("/api/operators/{id}/", "get"),
        ("/api/operators/{id}/", "patch"),
        ("/api/operators/{id}/", "delete"),
        ("/api/chats/", "get"),
        ("/api/chats/{id}/", "get"),
        ("/api/chats/{id}/mark_as_read/", "post"),
        ("/api/webhook/bot/{account}/", "post"),
        ("/api/webhook/bot/", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    app.stop().await;
}
