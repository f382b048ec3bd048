//! The isolation matrix, generated from the served OpenAPI document: every operation is called as nobody, as an
//! operator of another chat, with the token of a deactivated user and with a logged-out token. Each must get
//! the right status and never a byte of the chat it may not see, and afterwards that chat is as it was. An
//! endpoint added to the document is covered without a test of its own; one whose path names a resource this
//! matrix cannot fill in fails it until it learns how.

use std::collections::BTreeMap;

use crm_testkit::{TestApp, TestDatabase, on_every_backend, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "7011001100:AAIsolationBotTokenForTheTestSuite_abc";
const SECRET: &str = "isolation-webhook-secret";
/// Words only the hidden chat contains: none may appear in an answer to someone who may not see it.
const MARKERS: [&str; 3] = ["Zephyrine", "marker-8841", "olga-private-scan"];

on_every_backend!(no_operation_reaches_a_chat_its_caller_may_not_see);

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    OtherOperator,
    Deactivated,
    LoggedOut,
}

/// The resources of the hidden chat, to fill in path parameters.
struct Hidden {
    chat: i64,
    message: i64,
    media: i64,
    account: i64,
    owner: i64,
}

impl Hidden {
    /// `path` with its parameters filled in, by the resource its prefix names.
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/api/chats/") {
            self.chat
        } else if path.starts_with("/api/messages/") {
            self.message
        } else if path.starts_with("/api/media/") {
            self.media
        } else if path.starts_with("/api/accounts/") || path.starts_with("/api/webhook/") {
            self.account
        } else if path.starts_with("/api/operators/") {
            self.owner
        } else {
            panic!("the isolation matrix does not know which resource {path} names: teach Hidden::fill")
        };
        let mut filled = String::new();
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            filled.push_str(&rest[..open]);
            filled.push_str(&id.to_string());
            rest = &rest[close..];
        }
        filled.push_str(rest);
        filled
    }
}

async fn upload_as(app: &TestApp, token: &str) -> i64 {
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
    ];
    let part = reqwest::multipart::Part::bytes(png.to_vec())
        .file_name("olga-private-scan.png")
        .mime_str("image/png")
        .unwrap();
    let response = reqwest::Client::new()
        .post(app.url("/api/upload/"))
        .header("Authorization", format!("Token {token}"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// What the hidden chat looks like to its owner: compared before and after the matrix.
async fn snapshot(app: &TestApp, admin: &str, hidden: &Hidden) -> Value {
    let chat = app
        .get(&format!("/api/chats/{}/", hidden.chat), Some(admin))
        .await
        .body;
    let messages = app
        .get(
            &format!("/api/messages/by_chat/?chat_id={}", hidden.chat),
            Some(admin),
        )
        .await
        .body;
    let account = app
        .get(&format!("/api/accounts/{}/", hidden.account), Some(admin))
        .await
        .body;
    let owner = app
        .get(&format!("/api/operators/{}/", hidden.owner), Some(admin))
        .await
        .body;
    json!({
        "assigned_to": chat["assigned_operator"], "unread": chat["unread_count"], "status": chat["status"],
        "messages": messages["results"].as_array().map(|m| m.iter().map(|m| (m["id"].clone(), m["status"].clone(), m["text"].clone())).collect::<Vec<_>>()),
        "account": [account["status"].clone(), account["is_active"].clone(), account["intake_mode"].clone(), account["forward_url"].clone()],
        "owner": [owner["is_active"].clone(), owner["role"].clone(), owner["max_chats"].clone()],
    })
}

async fn no_operation_reaches_a_chat_its_caller_may_not_see(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (owner, olga) = app.create_operator(&admin, "olga").await;
    let (_, pavel) = app.create_operator(&admin, "pavel").await;
    let (dora_id, dora) = app.create_operator(&admin, "dora").await;
    let (_, rita) = app.create_operator(&admin, "rita").await;
    let account = crm_testkit::fixtures::bot_account(&app.store, "Isolation", Some(TOKEN), Some(SECRET))
        .await
        .id;
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000,
        "chat": {"id": 4242, "type": "private", "first_name": "Zephyrine"},
        "from": {"id": 4242, "first_name": "Zephyrine"}, "text": "marker-8841 my card number"}});
    assert_eq!(app.deliver_update(account, SECRET, &update).await, StatusCode::OK);
    let chats = app.get("/api/chats/", Some(&admin)).await.body;
    let chat = chats["results"][0]["id"].as_i64().unwrap();
    let assigned = app
        .post(
            &format!("/api/chats/{chat}/assign/"),
            Some(&admin),
            json!({"operator_id": owner}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{:?}", assigned.body);
    let messages = app
        .get(&format!("/api/messages/by_chat/?chat_id={chat}"), Some(&olga))
        .await
        .body;
    let message = messages["results"][0]["id"].as_i64().unwrap();
    let media = upload_as(&app, &olga).await;
    let hidden = Hidden {
        chat,
        message,
        media,
        account: account.0,
        owner,
    };
    let deactivated = app
        .call(
            Method::PATCH,
            &format!("/api/operators/{dora_id}/"),
            Some(&admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    let logout = app.post("/api/auth/logout/", Some(&rita), json!({})).await;
    assert_eq!(logout.status, StatusCode::OK);
    let before = snapshot(&app, &admin, &hidden).await;

    let document = app.get("/api/openapi.json", None).await.body;
    let paths = document["paths"].as_object().expect("the document lists paths");
    let mut table: BTreeMap<(String, &str), u16> = BTreeMap::new();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let public = matches!(
                path.as_str(),
                "/api/health/" | "/api/openapi.json" | "/api/api-token-auth/"
            );
            let webhook = path.starts_with("/api/webhook/");
            let names_a_resource = path.contains('{');
            let url = if names_a_resource {
                hidden.fill(path)
            } else {
                path.clone()
            };
            for (caller, token) in [
                (Caller::Anonymous, None),
                (Caller::OtherOperator, Some(pavel.as_str())),
                (Caller::Deactivated, Some(dora.as_str())),
                (Caller::LoggedOut, Some(rita.as_str())),
            ] {
                // Logging the other operator out would only end his own session, and the matrix's.
                if caller == Caller::OtherOperator && path == "/api/auth/logout/" {
                    continue;
                }
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
                let answer = app.call(method.clone(), &url, token, body).await;
                let status = answer.status.as_u16();
                table.insert((format!("{method} {path}"), caller_name(caller)), status);
                let text = answer.body.to_string();
                for marker in MARKERS {
                    assert!(
                        !text.contains(marker),
                        "{method} {url} as {caller:?} leaked `{marker}`: {text}"
                    );
                }
                assert!(status < 500, "{method} {url} as {caller:?}: {status} {text}");
                let expected: &[u16] = match caller {
                    _ if webhook => &[401],
                    _ if public => &[200, 400, 401, 429],
                    Caller::Anonymous | Caller::Deactivated | Caller::LoggedOut => &[401],
                    Caller::OtherOperator if names_a_resource => &[403, 404],
                    Caller::OtherOperator => &[200, 201, 202, 400, 403],
                };
                assert!(
                    expected.contains(&status),
                    "{method} {url} as {caller:?}: {status}, expected one of {expected:?}: {text}"
                );
            }
        }
    }
    assert!(
        operations >= 40,
        "the document lists every operation ({operations} found)"
    );
    let refused = table.values().filter(|status| **status >= 400).count();
    println!(
        "| isolation matrix | {} | {operations} operations × 4 callers, {} calls: {refused} refused, none leaked, \
         nothing changed |",
        app.store.backend().as_str(),
        table.len()
    );

    // Query parameters that name the hidden chat are refused like paths that do.
    for url in [
        format!("/api/messages/by_chat/?chat_id={chat}"),
        format!("/api/messages/?chat_id={chat}"),
        "/api/chats/?search=Zephyrine".to_owned(),
    ] {
        let answer = app.get(&url, Some(&pavel)).await;
        let text = answer.body.to_string();
        assert!(
            MARKERS.iter().all(|marker| !text.contains(marker)),
            "GET {url} as the other operator leaked: {text}"
        );
        assert!(
            matches!(answer.status.as_u16(), 200 | 404),
            "GET {url}: {} {text}",
            answer.status
        );
    }

    let after = snapshot(&app, &admin, &hidden).await;
    assert_eq!(
        before, after,
        "no call changed the hidden chat, its account or its owner"
    );
    let own = app.get(&format!("/api/media/{media}/"), Some(&olga)).await;
    assert_eq!(own.status, StatusCode::OK, "the owner still has her upload");
    app.stop().await;
}

fn caller_name(caller: Caller) -> &'static str {
    match caller {
        Caller::Anonymous => "anonymous",
        Caller::OtherOperator => "other operator",
        Caller::Deactivated => "deactivated",
        Caller::LoggedOut => "logged out",
    }
}
