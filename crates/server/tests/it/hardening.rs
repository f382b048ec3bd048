//! What an attack found, kept found: parallel login bursts against the throttle, look-alike and padded
//! usernames, weak passwords, idle and slow connections against a process with few file descriptors, bot
//! tokens in the log, and error bodies that are always JSON.

use std::collections::HashMap;
use std::time::Duration;

use crm_testkit::app::spawn_app_with;
use crm_testkit::process::CrmProcess;
use crm_testkit::{TestApp, TestDatabase, on_every_backend, spawn_app};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CRM: &str = env!("CARGO_BIN_EXE_crm");

on_every_backend!(
    parallel_logins_cannot_outrun_the_throttle,
    usernames_cannot_pose_as_others_and_weak_passwords_are_refused,
    a_bot_cannot_be_pointed_at_internal_addresses,
    hostile_uploads_are_refused_and_leave_nothing_behind
);

async fn parallel_logins_cannot_outrun_the_throttle(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    app.create_operator(&admin, "olga").await;

    // 200 wrong passwords at once, from one address: only the throttle's 5 are checked at all.
    let attempts = (0..200).map(|i| {
        app.post(
            "/api/api-token-auth/",
            None,
            json!({"username": "olga", "password": format!("wrong-guess-{i}")}),
        )
    });
    let answers = join_all(attempts).await;
    let checked = answers
        .iter()
        .filter(|a| a.status == StatusCode::BAD_REQUEST && a.body["code"] == "invalid_credentials")
        .count();
    let throttled = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS && a.body["code"] == "rate_limited")
        .count();
    assert_eq!((checked, throttled), (5, 195), "{answers:?}");
    println!(
        "| 200 parallel wrong passwords, one user and address | {} | {checked} checked, {throttled} answered 429 |",
        app.store.backend().as_str()
    );
    assert!(
        answers
            .iter()
            .all(|a| a.body["retry_after"].as_u64().is_some() || a.status == 400)
    );

    // The right password does not get through now, nor does the same name padded or in capitals.
    for username in ["olga", "olga ", "OLGA"] {
        let right = app
            .post(
                "/api/api-token-auth/",
                None,
                json!({"username": username, "password": "olga-password"}),
            )
            .await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{username:?}: {:?}",
            right.body
        );
        assert!(right.body.get("token").is_none());
    }
    app.stop().await;
}

async fn usernames_cannot_pose_as_others_and_weak_passwords_are_refused(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let create = |username: &str, password: &str| {
        app.post(
            "/api/operators/",
            Some(&admin),
            json!({"username": username, "password": password}),
        )
    };
    let created = create("Pavel", "pavel-password").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.body["username"], "pavel",
        "usernames are stored lowercase"
    );
    assert_eq!(created.body["display_name"], "Pavel");

    let taken = create("PAVEL", "another-password-1").await;
    assert_eq!(
        (taken.status, taken.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );
    let cyrillic = create("\u{430}dmin", "another-password-1").await;
    assert_eq!(
        cyrillic.status,
        StatusCode::BAD_REQUEST,
        "a Cyrillic а posing as admin: {:?}",
        cyrillic.body
    );
    for (password, code) in [
        ("password", "password_too_common"),
        ("Qwerty123", "password_too_common"),
        ("zzzzzzzzzzzz", "password_too_simple"),
        ("boris2026!", "password_like_username"),
    ] {
        let weak = create("boris", password).await;
        assert_eq!(
            (weak.status, weak.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{password}"
        );
    }

    // Any letter case logs in; trailing spaces (equal under MariaDB's PAD SPACE collations) do not.
    let by_capitals = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "PAVEL", "password": "pavel-password"}),
        )
        .await;
    assert_eq!(by_capitals.status, StatusCode::OK, "{:?}", by_capitals.body);
    let padded = app
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "pavel  ", "password": "pavel-password"}),
        )
        .await;
    assert_eq!(
        (padded.status, padded.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_credentials"))
    );
    app.stop().await;
}

async fn a_bot_cannot_be_pointed_at_internal_addresses(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let token = "7009001002:AAHardeningBotTokenForTheTestSuite_abc";
    app.bot_api.add_bot(token, 7009001002, "hardening_bot");
    let create = |forward_url: &str| {
        app.post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Hardening", "account_type": "bot", "bot_token": token, "forward_url": forward_url}),
        )
    };
    for internal in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://localhost:8080/hook",
        "http://10.0.0.5/hook",
        "http://[::ffff:127.0.0.2]/hook",
        "http://redis:6379/",
    ] {
        let refused = create(internal).await;
        assert_eq!(
            (refused.status, refused.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("forward_url_not_public")),
            "{internal}: {:?}",
            refused.body
        );
    }
    // A host listed in FORWARD_ALLOWED_HOSTS (the test settings list 127.0.0.1) is allowed on purpose.
    let allowed = create("http://127.0.0.1:9/hook").await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{:?}", allowed.body);
    let id = allowed.body["id"].as_i64().unwrap();
    let changed = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            Some(json!({"forward_url": "http://192.168.1.1/"})),
        )
        .await;
    assert_eq!(
        changed.body["code"], "forward_url_not_public",
        "{:?}",
        changed.body
    );

    // A webhook base URL with a query or a fragment would build a broken webhook URL.
    for base_url in ["https://crm.example.com/?a=1", "https://crm.example.com/#top"] {
        let refused = app
            .post(
                &format!("/api/accounts/{id}/set_webhook/"),
                Some(&admin),
                json!({ "base_url": base_url }),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{base_url}: {:?}",
            refused.body
        );
    }
    assert!(app.bot_api.calls_of("setWebhook").is_empty());
    app.stop().await;
}

/// A multipart body with one `file` field; `complete: false` leaves out the closing boundary, as a client that
/// lost its connection would.
fn multipart_body(name: &str, bytes: &[u8], complete: bool) -> (String, Vec<u8>) {
    let boundary = "hardening-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    if complete {
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    }
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_raw(
    app: &TestApp,
    token: &str,
    name: &str,
    bytes: &[u8],
    complete: bool,
) -> (StatusCode, Value) {
    let (content_type, body) = multipart_body(name, bytes, complete);
    let response = reqwest::Client::new()
        .post(app.url("/api/upload/"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// Files in the media directory, part files included.
fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { files_under(&path) } else { 1 }
        })
        .sum()
}

async fn hostile_uploads_are_refused_and_leave_nothing_behind(database: TestDatabase) {
    let media_dir = database.dir.path().join("data").join("media");
    let app = spawn_app_with(database, |settings| {
        settings.max_upload_size = 256 * 1024;
        settings.upload_quota_bytes = 300 * 1024;
    })
    .await;
    let admin = app.admin_token().await;
    let (_, olga) = app.create_operator(&admin, "olga").await;
    let png: Vec<u8> = [
        &[
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
        ][..],
        &vec![0_u8; 200 * 1024],
    ]
    .concat();

    // A right-to-left override cannot disguise the name; the type comes from the bytes.
    let (status, first) = upload_raw(&app, &olga, "invoice\u{202E}gnp.exe", &png, true).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["file_name"], "invoicegnp.exe");
    assert_eq!(first["content_type"], "image/png");
    let stored = files_under(&media_dir);
    assert_eq!(stored, 1);

    for (name, bytes, complete, expected, code) in [
        (
            "second.png",
            png.clone(),
            true,
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_quota_exceeded",
        ),
        (
            "cut.png",
            png[..1000].to_vec(),
            false,
            StatusCode::BAD_REQUEST,
            "upload_incomplete",
        ),
        (
            "empty.png",
            Vec::new(),
            true,
            StatusCode::BAD_REQUEST,
            "empty_file",
        ),
        (
            "script.png",
            b"<html><script>alert(1)</script>".to_vec(),
            true,
            StatusCode::BAD_REQUEST,
            "file_type_not_allowed",
        ),
        (
            "../../etc/passwd",
            b"MZ\x90\x00\x03".to_vec(),
            true,
            StatusCode::BAD_REQUEST,
            "file_type_not_allowed",
        ),
    ] {
        let (status, body) = upload_raw(&app, &olga, name, &bytes, complete).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{name}: {body}"
        );
    }
    let (_, pavel) = app.create_operator(&admin, "pavel").await;
    let oversized = [png.as_slice(), &vec![1_u8; 100 * 1024]].concat();
    let (status, body) = upload_raw(&app, &pavel, "big.png", &oversized, true).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("file_too_large")),
        "{body}"
    );
    assert_eq!(
        files_under(&media_dir),
        stored,
        "refused uploads leave no file, not even a part file"
    );
    app.stop().await;
}

/// A `crm serve` on a fresh SQLite file in `dir`, with a short header deadline and `open_files` descriptors.
async fn small_server(dir: &std::path::Path, open_files: u32) -> CrmProcess {
    let environment = HashMap::from([
        ("DATA_DIR", dir.display().to_string()),
        ("CRM_ADMIN_PASSWORD", "hardening-admin-password".to_owned()),
        ("HTTP_HEADER_TIMEOUT_SECS", "2".to_owned()),
        ("TELEGRAM_BOT_API_URL", "http://127.0.0.1:9".to_owned()),
        ("LOG_LEVEL", "debug".to_owned()),
    ]);
    CrmProcess::start_with_open_files(CRM, &environment, open_files).await
}

/// Reads from `socket` until the server closes it; how long that took (bounded).
async fn closed_by_server(mut socket: tokio::net::TcpStream) -> Duration {
    let started = tokio::time::Instant::now();
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer))
            .await
            .expect("the server closes an idle connection within 20 s")
        {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_cannot_starve_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = small_server(dir.path(), 256).await;
    let client = reqwest::Client::new();
    let health = || async {
        client
            .get(format!("{}/api/health/", server.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status())
    };
    assert_eq!(health().await.unwrap(), StatusCode::OK);

    // A slowloris sending half a header, then more idle sockets than the process has descriptors.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    slow.write_all(b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let slow_closed = tokio::spawn(closed_by_server(slow));
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap(),
        );
    }
    let slow_closed = slow_closed.await.unwrap();
    let closings = join_all(idle.into_iter().map(closed_by_server)).await;
    let longest = closings.iter().max().copied().unwrap_or_default();
    println!(
        "| 300 idle sockets + a slowloris, 256 descriptors | sqlite | every idle socket closed by the server, the \
         last after {longest:.1?}; half a header closed after {slow_closed:.1?} |"
    );
    assert!(
        slow_closed >= Duration::from_secs(1) && slow_closed < Duration::from_secs(10),
        "half a header is given its deadline (2 s here), no more: {slow_closed:?}"
    );

    // The server serves again, and never ran out of descriptors on its own files.
    assert_eq!(health().await.unwrap(), StatusCode::OK);
    let log = server.log();
    assert!(
        !log.iter().any(|line| line.contains("Too many open files")),
        "{:?}",
        log.iter()
            .filter(|l| l.contains("open files"))
            .collect::<Vec<_>>()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_login_burst_costs_a_queue_not_memory() {
    let dir = tempfile::tempdir().unwrap();
    let environment = HashMap::from([
        ("DATA_DIR", dir.path().display().to_string()),
        ("CRM_ADMIN_PASSWORD", "hardening-admin-password".to_owned()),
        ("TELEGRAM_BOT_API_URL", "http://127.0.0.1:9".to_owned()),
        // Each attempt from its own address and for its own name, so that no throttle stops them first.
        ("TRUST_FORWARDED_FOR", "true".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
    ]);
    let server = CrmProcess::start(CRM, &environment).await;
    let client = reqwest::Client::new();
    let before = server.resident_kib().unwrap_or_default();
    let attempts = (0..200).map(|i| {
        client
            .post(format!("{}/api/api-token-auth/", server.base_url))
            .header("X-Forwarded-For", format!("10.9.{}.{}", i / 250, i % 250 + 1))
            .json(&json!({"username": format!("nobody{i}"), "password": "wrong-password"}))
            .send()
    });
    let started = tokio::time::Instant::now();
    let answers = join_all(attempts).await;
    let took = started.elapsed();
    let after = server.resident_kib().unwrap_or_default();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for answer in &answers {
        let status = answer.as_ref().map_or(0, |a| a.status().as_u16());
        *statuses.entry(status).or_default() += 1;
    }
    println!(
        "| 200 parallel logins, 200 addresses | sqlite | answers {statuses:?} in {took:.1?}; resident memory {} MiB \
         before, {} MiB after |",
        before / 1024,
        after / 1024
    );
    assert_eq!(
        statuses.get(&400).copied().unwrap_or(0) + statuses.get(&429).copied().unwrap_or(0),
        200,
        "each one refused as wrong or asked to retry: {statuses:?}"
    );
    // Unbounded, 100 parallel argon2 checks took the process from 327 MB to 2.5 GB.
    assert!(
        after.saturating_sub(before) < 200 * 1024,
        "{} MiB more after the burst",
        after.saturating_sub(before) / 1024
    );
    let health = client
        .get(format!("{}/api/health/", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn bot_tokens_never_reach_the_log_and_every_error_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = small_server(dir.path(), 1024).await;
    let client = reqwest::Client::new();
    let token = "5550001112:AAOtherTokenThatIsNotRegistered_xyzxyz";
    let post = |path: String, body: &'static str| {
        client
            .post(format!("{}{path}", server.base_url))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let by_path = post(format!("/api/webhook/bot/{token}/"), "{not json")
        .await
        .unwrap();
    assert_eq!(by_path.status(), StatusCode::UNAUTHORIZED);
    let by_query = post(format!("/api/webhook/bot/?token={token}"), "{}")
        .await
        .unwrap();
    assert_eq!(by_query.status(), StatusCode::UNAUTHORIZED);

    // Rejections made before any handler runs answer in JSON too.
    // (A client of its own: the server closes that connection rather than read the rest of the body.)
    let oversized = reqwest::Client::new()
        .post(format!("{}/api/api-token-auth/", server.base_url))
        .header("Content-Type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = oversized.json().await.expect("a JSON body");
    assert_eq!(body["code"], "payload_too_large", "{body}");
    let admin: Value = client
        .post(format!("{}/api/api-token-auth/", server.base_url))
        .json(&json!({"username": "admin", "password": "hardening-admin-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad_boundary = client
        .post(format!("{}/api/upload/", server.base_url))
        .header(
            "Authorization",
            format!("Token {}", admin["token"].as_str().unwrap()),
        )
        .header("Content-Type", "multipart/form-data")
        .body("--x\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_boundary.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad_boundary.json().await.expect("a JSON body");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");

    let log = server.log();
    assert!(
        log.iter().any(|line| line.contains("<bot-token>")),
        "the request was logged"
    );
    let leaked: Vec<&String> = log.iter().filter(|line| line.contains(token)).collect();
    assert!(leaked.is_empty(), "the bot token was logged: {leaked:?}");
    server.stop().await;
}

/// Every file under `dir`, whole.
fn file_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                file_bytes(&path)
            } else {
                std::fs::read(&path)
                    .map(|bytes| vec![(path, bytes)])
                    .unwrap_or_default()
            }
        })
        .collect()
}

#[tokio::test]
async fn no_secret_reaches_the_database_files_the_log_or_an_answer() {
    const TOKEN: &str = "7014001400:AASecretsAuditBotTokenForTheTests_xyz";
    const API_HASH: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    const ADMIN_PASSWORD: &str = "audit-admin-password-41";
    const OPERATOR_PASSWORD: &str = "audit-operator-password-73";
    let telegram = crm_testkit::FakeBotApi::start().await;
    telegram.add_bot(TOKEN, 7014001400, "audit_bot");
    let dir = tempfile::tempdir().unwrap();
    let environment = HashMap::from([
        ("DATA_DIR", dir.path().display().to_string()),
        ("CRM_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("TELEGRAM_BOT_API_URL", telegram.base_url.clone()),
        ("LOG_LEVEL", "debug".to_owned()),
    ]);
    let server = CrmProcess::start(CRM, &environment).await;
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = client.request(method, format!("{}{path}", server.base_url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let login = call(
        reqwest::Method::POST,
        "/api/api-token-auth/",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    let admin = login["token"].as_str().unwrap().to_owned();
    let steps = [
        (
            reqwest::Method::POST,
            "/api/accounts/".to_owned(),
            Some(json!({"name": "Audit", "account_type": "bot", "bot_token": TOKEN})),
        ),
        (
            reqwest::Method::POST,
            "/api/accounts/".to_owned(),
            Some(json!({"name": "Phone", "account_type": "personal",
            "phone_number": "+491701234567", "api_id": 12345, "api_hash": API_HASH})),
        ),
        (
            reqwest::Method::POST,
            "/api/operators/".to_owned(),
            Some(json!({"username": "olga", "password": OPERATOR_PASSWORD})),
        ),
        (reqwest::Method::GET, "/api/accounts/".to_owned(), None),
    ];
    for (method, path, body) in steps {
        let answer = call(method, &path, Some(&admin), body).await.unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answers.push(answer.text().await.unwrap());
    }
    let accounts: Value = serde_json::from_str(answers.last().unwrap()).unwrap();
    for account in accounts["results"].as_array().unwrap() {
        let path = format!("/api/accounts/{}/", account["id"]);
        answers.push(
            call(reqwest::Method::GET, &path, Some(&admin), None)
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        if account["account_type"] == "bot" {
            let path = format!("/api/accounts/{}/set_webhook/", account["id"]);
            let set = call(
                reqwest::Method::POST,
                &path,
                Some(&admin),
                Some(json!({"base_url": "https://crm.example.com"})),
            )
            .await
            .unwrap();
            assert!(set.status().is_success(), "set_webhook: {}", set.status());
            answers.push(set.text().await.unwrap());
        }
    }
    let webhook_secret = telegram
        .calls_of("setWebhook")
        .pop()
        .expect("a webhook was set")
        .params["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The predecessor's token form, once well and once with a broken body.
    for body in [r#"{"update_id": 1}"#, "{broken"] {
        answers.push(
            client
                .post(format!("{}/api/webhook/bot/{TOKEN}/", server.base_url))
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let log = server.stop_and_log().await;

    let secrets = [
        ("bot token", TOKEN),
        ("api_hash", API_HASH),
        ("admin password", ADMIN_PASSWORD),
        ("operator password", OPERATOR_PASSWORD),
        ("webhook secret", webhook_secret.as_str()),
    ];
    let files = file_bytes(dir.path());
    // The search would see a value stored in clear: the bot's public username is.
    assert!(
        files
            .iter()
            .any(|(_, bytes)| bytes.windows(9).any(|window| window == b"audit_bot")),
        "the database files were read"
    );
    let mut found = Vec::new();
    for (name, secret) in secrets {
        for (path, bytes) in &files {
            if bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes())
            {
                found.push(format!("{name} in {}", path.display()));
            }
        }
        found.extend(
            log.iter()
                .filter(|line| line.contains(secret))
                .map(|line| format!("{name} in the log: {line}")),
        );
        found.extend(
            answers
                .iter()
                .filter(|answer| answer.contains(secret))
                .map(|answer| format!("{name} in an answer: {answer}")),
        );
    }
    println!(
        "| secrets audit | sqlite | 5 secrets searched in {} files ({} KiB), {} log lines at debug and {} answers: {} found |",
        files.len(),
        files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>() / 1024,
        log.len(),
        answers.len(),
        found.len()
    );
    assert!(found.is_empty(), "{found:#?}");
}
