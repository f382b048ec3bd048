//! Admins manage operators: create, list with pages, change, deactivate, reset passwords and remove; bad input
//! is refused with a clear error and changes nothing.

use crm_testkit::{TestDatabase, on_every_backend, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_every_backend!(
    operator_crud,
    operator_input_is_validated,
    operators_are_paginated
);

async fn operator_crud(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;

    let created = app
        .post(
            "/api/operators/",
            Some(&admin),
            json!({"username": "pavel", "password": "pavel-password",
            "display_name": "Павел", "max_chats": 7, "language": "en"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["username"], "pavel");
    assert_eq!(created.body["display_name"], "Павел");
    assert_eq!(created.body["role"], "operator");
    assert_eq!(created.body["max_chats"], 7);
    assert_eq!(created.body["current_chats"], 0);
    assert_eq!(created.body["is_active"], true);
    assert!(created.body.get("password").is_none() && created.body.get("password_hash").is_none());

    let duplicate = app
        .post(
            "/api/operators/",
            Some(&admin),
            json!({"username": "pavel", "password": "other-password"}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.body["code"], "username_taken");

    let token = app.login("pavel", "pavel-password").await;
    let fetched = app.get(&format!("/api/operators/{id}/"), Some(&admin)).await;
    assert_eq!(fetched.body["username"], "pavel");
    assert!(
        fetched.body["last_login_at"].is_string(),
        "the login was recorded"
    );

    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            Some(json!({"max_chats": 12})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["max_chats"], 12);
    assert_eq!(
        patched.body["display_name"], "Павел",
        "fields not sent stay as they were"
    );
    assert_eq!(
        app.get("/api/auth/me/", Some(&token)).await.status,
        StatusCode::OK,
        "a limit change keeps sessions"
    );

    // A password reset ends the operator's sessions; the new password works, the old one does not.
    let reset = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            Some(json!({"password": "brand-new-password"})),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/auth/me/", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let old = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "pavel", "password": "pavel-password"}),
        )
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    let token = app.login("pavel", "brand-new-password").await;

    // Deactivation ends sessions and blocks logins; reactivation lets them in again.
    let off = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.body["is_active"], false);
    assert_eq!(
        app.get("/api/auth/me/", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refused = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "pavel", "password": "brand-new-password"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    app.call(
        Method::PATCH,
        &format!("/api/operators/{id}/"),
        Some(&admin),
        Some(json!({"is_active": true})),
    )
    .await;
    let token = app.login("pavel", "brand-new-password").await;

    // Promotion to admin gives access to admin endpoints.
    let promoted = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.body["role"], "admin");
    assert_eq!(
        app.get("/api/operators/", Some(&token)).await.status,
        StatusCode::OK
    );

    // An admin cannot lock themselves out.
    let me = app.get("/api/auth/me/", Some(&admin)).await.body["id"]
        .as_i64()
        .unwrap();
    let lockout = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{me}/"),
            Some(&admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(lockout.status, StatusCode::CONFLICT);
    assert_eq!(lockout.body["code"], "self_lockout");
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/operators/{me}/"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::CONFLICT
    );

    // Removal: 204, then gone, sessions ended, username free again.
    let removed = app
        .call(
            Method::DELETE,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/operators/{id}/"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/operators/{id}/"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/auth/me/", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .post(
            "/api/operators/",
            Some(&admin),
            json!({"username": "pavel", "password": "pavel-password"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.body["id"].as_i64().unwrap(), id);

    let actions: Vec<String> = crm_store::repo::audit::newest(&app.store, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in ["operator.created", "operator.updated", "operator.removed"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
    app.stop().await;
}

async fn operator_input_is_validated(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (id, _) = app.create_operator(&admin, "inna").await;
    let before = app.get(&format!("/api/operators/{id}/"), Some(&admin)).await.body;

    let bad_creates = [
        (json!({"username": "x", "password": "short"}), "invalid_field"),
        (
            json!({"username": "has space", "password": "long enough pw"}),
            "invalid_field",
        ),
        (
            json!({"username": "", "password": "long enough pw"}),
            "invalid_field",
        ),
        (
            json!({"username": "ok", "password": "long enough pw", "max_chats": -3}),
            "invalid_field",
        ),
        (
            json!({"username": "ok", "password": "long enough pw", "role": "root"}),
            "invalid_body",
        ),
        (
            json!({"username": "ok", "password": "long enough pw", "is_superuser": true}),
            "invalid_body",
        ),
        (
            json!({"username": 5, "password": "long enough pw"}),
            "invalid_body",
        ),
        (json!({"password": "long enough pw"}), "invalid_body"),
    ];
    for (body, code) in bad_creates {
        let reply = app.post("/api/operators/", Some(&admin), body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["code"], code, "{body}: {:?}", reply.body);
        assert!(reply.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let bad_patches = [
        json!({"max_chats": 100000}),
        json!({"password": "2short"}),
        json!({"language": "1"}),
        json!({"max_chats": "ten"}),
    ];
    for body in bad_patches {
        let reply = app
            .call(
                Method::PATCH,
                &format!("/api/operators/{id}/"),
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let raw = app
        .client
        .post(app.url("/api/operators/"))
        .header("Authorization", format!("Token {admin}"))
        .header("content-type", "text/plain")
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    // A separate client: the server answers before reading the whole body and closes that connection.
    let huge = reqwest::Client::new()
        .post(app.url("/api/operators/"))
        .header("Authorization", format!("Token {admin}"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{}\"}}", "a".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert!(
        huge.status() == StatusCode::BAD_REQUEST || huge.status() == StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        huge.status()
    );

    let after = app.get(&format!("/api/operators/{id}/"), Some(&admin)).await.body;
    assert_eq!(before, after, "refused changes left the operator as it was");
    let listed = app.get("/api/operators/", Some(&admin)).await;
    assert_eq!(listed.body["count"], 2, "nothing else was created");
    app.stop().await;
}

async fn operators_are_paginated(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    // Insert directly: 54 logins through argon2 would only slow the test.
    for n in 0..54 {
        crm_store::repo::users::create(
            &app.store,
            crm_store::repo::users::NewUser {
                username: format!("op{n:02}"),
                password_hash: "unused".into(),
                role: crm_core::user::Role::Operator,
                display_name: format!("Operator {n}"),
                language: "ru".into(),
                max_chats: 50,
                is_active: true,
            },
        )
        .await
        .unwrap();
    }
    let first = app.get("/api/operators/", Some(&admin)).await;
    assert_eq!(first.body["count"], 55);
    assert_eq!(first.body["results"].as_array().unwrap().len(), 50);
    assert!(first.body["previous"].is_null());
    let next = first.body["next"].as_str().unwrap();
    assert!(next.ends_with("/api/operators/?page=2"), "{next}");
    let second = app
        .client
        .get(next)
        .header("Authorization", format!("Token {admin}"))
        .send()
        .await
        .unwrap();
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["results"].as_array().unwrap().len(), 5);
    assert_eq!(second["results"][4]["username"], "op53");
    assert!(second["next"].is_null());
    assert!(second["previous"].as_str().unwrap().ends_with("/api/operators/"));
    let filtered = app.get("/api/operators/?role=admin", Some(&admin)).await;
    assert_eq!(filtered.body["count"], 1);
    assert_eq!(
        app.get("/api/operators/?page=3", Some(&admin)).await.status,
        StatusCode::NOT_FOUND
    );
    let zero = app.get("/api/operators/?page=0", Some(&admin)).await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/operators/?page=abc", Some(&admin)).await.body["code"],
        "invalid_query"
    );
    app.stop().await;
}
