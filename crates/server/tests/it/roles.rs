//! Roles: a missing or bad token is 401, a wrong role 403, an object out of reach or missing 404, and every
//! error has the `{"error", "code"}` shape.

use crm_testkit::{TestDatabase, on_every_backend, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_every_backend!(roles_are_enforced_with_401_403_404);

async fn roles_are_enforced_with_401_403_404(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (operator_id, operator) = app.create_operator(&admin, "olga").await;

    let admin_only = [
        (Method::GET, "/api/operators/".to_owned()),
        (Method::POST, "/api/operators/".to_owned()),
        (Method::GET, format!("/api/operators/{operator_id}/")),
        (Method::PATCH, format!("/api/operators/{operator_id}/")),
        (Method::DELETE, format!("/api/operators/{operator_id}/")),
        (Method::GET, "/api/system/status/".to_owned()),
    ];
    for (method, path) in &admin_only {
        let body = (*method == Method::POST || *method == Method::PATCH).then(|| json!({"max_chats": 1}));
        let anonymous = app.call(method.clone(), path, None, body.clone()).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} anonymous"
        );
        assert_eq!(anonymous.body["code"], "not_authenticated");
        let as_operator = app.call(method.clone(), path, Some(&operator), body).await;
        assert_eq!(
            as_operator.status,
            StatusCode::FORBIDDEN,
            "{method} {path} as operator"
        );
        assert_eq!(as_operator.body["code"], "permission_denied");
        assert!(as_operator.body["error"].is_string());
    }
    // The operator was not changed by any of the refused calls.
    let still = app
        .get(&format!("/api/operators/{operator_id}/"), Some(&admin))
        .await;
    assert_eq!(still.body["max_chats"], 50);
    assert_eq!(still.body["is_active"], true);

    // An operator may see themselves.
    let me = app.get("/api/auth/me/", Some(&operator)).await;
    assert_eq!(me.body["username"], "olga");
    assert_eq!(me.body["role"], "operator");

    for path in [
        "/api/operators/999999/",
        "/api/operators/not-a-number/",
        "/api/no-such-endpoint/",
    ] {
        let reply = app.get(path, Some(&admin)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body["code"], "not_found");
    }
    let wrong_method = app.call(Method::PUT, "/api/health/", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.body["code"], "method_not_allowed");

    // Paths work without the trailing slash too.
    assert_eq!(
        app.get("/api/auth/me", Some(&operator)).await.body["username"],
        "olga"
    );

    // A Host outside ALLOWED_HOSTS is refused.
    let foreign = app
        .client
        .get(app.url("/api/health/"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = foreign.json().await.unwrap();
    assert_eq!(body["code"], "disallowed_host");
    app.stop().await;
}
