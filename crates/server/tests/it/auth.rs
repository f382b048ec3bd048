//! Logging in and out with tokens, both header schemes, and throttling of failed logins.

use crm_testkit::app::ADMIN_PASSWORD;
use crm_testkit::{TestDatabase, on_every_backend, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

on_every_backend!(token_auth_round_trip, failed_logins_are_throttled);

async fn token_auth_round_trip(database: TestDatabase) {
    let app = spawn_app(database).await;

    let wrong = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "admin", "password": "nope"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["code"], "invalid_credentials");
    assert!(wrong.body["error"].as_str().unwrap().contains("Unable to log in"));
    assert!(wrong.body.get("token").is_none());

    let token = app.admin_token().await;
    assert_eq!(token.len(), 40);
    for scheme in ["Token", "Bearer", "bearer"] {
        let reply = app
            .client
            .get(app.url("/api/auth/me/"))
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "scheme {scheme}");
        let me: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(me["username"], "admin");
        assert_eq!(me["role"], "admin");
        assert!(me.get("password_hash").is_none());
    }

    // DRF clients post a form.
    let form = app
        .client
        .post(app.url("/api/api-token-auth/"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let second: serde_json::Value = form.json().await.unwrap();
    let second = second["token"].as_str().unwrap().to_owned();
    assert_ne!(second, token, "each login issues its own token");

    let missing = app.get("/api/auth/me/", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let request_id = missing.headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        request_id.len(),
        36,
        "every response carries a request id: {request_id}"
    );
    assert_eq!(missing.body["code"], "not_authenticated");
    let forged = app.get("/api/auth/me/", Some(&"f".repeat(40))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let malformed = app
        .client
        .get(app.url("/api/auth/me/"))
        .header("Authorization", "Basic YWRtaW46eA==")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);

    let logout = app.post("/api/auth/logout/", Some(&token), json!({})).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.body, json!({"status": "logged_out", "revoked": 1}));
    assert_eq!(
        app.get("/api/auth/me/", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/auth/me/", Some(&second)).await.status,
        StatusCode::OK,
        "other sessions live on"
    );

    let third = app.admin_token().await;
    let everywhere = app
        .post("/api/auth/logout/?all=true", Some(&second), json!({}))
        .await;
    assert_eq!(everywhere.body["revoked"], 2);
    assert_eq!(
        app.get("/api/auth/me/", Some(&third)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let bad_body = app
        .client
        .post(app.url("/api/api-token-auth/"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), StatusCode::BAD_REQUEST);
    let bad_body: serde_json::Value = bad_body.json().await.unwrap();
    assert_eq!(bad_body["code"], "invalid_body");
    app.stop().await;
}

async fn failed_logins_are_throttled(database: TestDatabase) {
    let app = spawn_app(database).await;
    for attempt in 0..5 {
        let reply = app
            .post(
                "/api/api-token-auth/",
                None,
                json!({"username": "admin", "password": format!("guess{attempt}")}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "attempt {attempt}");
    }
    // Even the right password is refused while the username is throttled.
    let blocked = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.body["code"], "rate_limited");
    let retry_after = blocked.body["retry_after"].as_u64().unwrap();
    assert!((800..=900).contains(&retry_after), "retry_after {retry_after}");
    assert_eq!(
        blocked.headers["retry-after"].to_str().unwrap(),
        retry_after.to_string()
    );
    // Failed attempts are in the audit log, without the passwords.
    let audit = crm_store::repo::audit::newest(&app.store, 20).await.unwrap();
    let failures: Vec<_> = audit.iter().filter(|e| e.action == "auth.login_failed").collect();
    assert_eq!(failures.len(), 5);
    assert!(
        failures
            .iter()
            .all(|e| e.details["username"] == "admin" && !e.details.to_string().contains("guess"))
    );
    app.stop().await;
}
