//! Files both ways: received media are downloaded in the background and served only to users who may see the
//! chat, typed from their bytes; oversized files are marked; uploads are accepted only for allowed byte types
//! and sent with the right Bot API method.

use crm_testkit::app::spawn_app_with;
use crm_testkit::{Fault, TestApp, TestDatabase, on_every_backend};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "7004005006:AAMediaBotTokenForTheTestSuite_abcdefgh";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0,
    0, 1, 8, 2, 0, 0, 0,
];
const HTML: &[u8] = b"<html><body><script>alert(document.cookie)</script></body></html>";

async fn deliver(app: &TestApp, update_id: i64, message: Value) {
    let mut message = message;
    message["chat"] = json!({"id": 5050, "type": "private", "first_name": "Nina"});
    message["from"] = json!({"id": 5050, "first_name": "Nina"});
    message["date"] = json!(1_700_000_000 + update_id);
    message["message_id"] = json!(update_id);
    let update = json!({"update_id": update_id, "message": message});
    let response = app
        .client
        .post(app.url(&format!("/api/webhook/bot/{TOKEN}/")))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn media_of(app: &TestApp, token: &str, chat_id: i64, telegram_id: i64, status: &str) -> Value {
    crm_testkit::eventually(
        &format!("the file of message {telegram_id} to become {status}"),
        || async {
            let path = format!("/api/messages/by_chat/?chat_id={chat_id}&limit=50");
            let page = app.get(&path, Some(token)).await.body;
            let message = page["results"]
                .as_array()?
                .iter()
                .find(|m| m["telegram_id"] == telegram_id)?
                .clone();
            (message["media"]["status"] == status).then_some(message)
        },
    )
    .await
}

async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    declared: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(declared)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = reqwest::Client::new()
        .post(app.url("/api/upload/"))
        .header("Authorization", format!("Token {token}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_every_backend!(files_are_downloaded_served_uploaded_and_sent);

async fn files_are_downloaded_served_uploaded_and_sent(database: TestDatabase) {
    let app = spawn_app_with(database, |settings| settings.max_upload_size = 64 * 1024).await;
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (_, pavel) = app.create_operator(&admin, "pavel").await;
    app.bot_api.add_bot(TOKEN, 7004005006, "media_bot");
    assert_eq!(
        app.post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Media", "account_type": "bot", "bot_token": TOKEN})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    app.bot_api
        .add_file("photo-large", "photos/file_7.jpg", PNG.to_vec());
    app.bot_api
        .add_file("doc-html", "documents/file_8.pdf", HTML.to_vec());
    app.bot_api.add_too_big_file("doc-big-at-telegram");
    app.bot_api.fail_next("getFile", Fault::ServerError);

    deliver(&app, 1, json!({"caption": "my receipt", "photo": [{"file_id": "photo-small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
        {"file_id": "photo-large", "file_unique_id": "l", "width": 800, "height": 800, "file_size": 29}]})).await;
    deliver(&app, 2, json!({"document": {"file_id": "doc-html", "file_unique_id": "h", "file_name": "../../invoice.pdf", "mime_type": "application/pdf"}})).await;
    deliver(&app, 3, json!({"video": {"file_id": "video-huge", "file_unique_id": "v", "file_size": 30 * 1024 * 1024, "duration": 60}})).await;
    deliver(
        &app,
        4,
        json!({"document": {"file_id": "doc-big-at-telegram", "file_unique_id": "b"}}),
    )
    .await;

    let chat_id = app.get("/api/chats/", Some(&admin)).await.body["results"][0]["id"]
        .as_i64()
        .unwrap();
    let assigned = app
        .post(
            &format!("/api/chats/{chat_id}/assign/"),
            Some(&admin),
            json!({"operator_id": olga_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);

    // The photo: the largest size, typed from its bytes (one getFile failed with a 5xx and was retried).
    let photo = media_of(&app, &olga, chat_id, 1, "stored").await;
    assert_eq!(photo["message_type"], "photo");
    assert_eq!(photo["media_caption"], "my receipt");
    assert_eq!(photo["media"]["content_type"], "image/png");
    let file = app
        .client
        .get(app.url(photo["media"]["url"].as_str().unwrap()))
        .header("Authorization", format!("Token {olga}"))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(file.bytes().await.unwrap().as_ref(), PNG);
    let get_files = app.bot_api.calls_of("getFile");
    assert!(
        get_files.iter().all(|c| c.params["file_id"] != "photo-small"),
        "only the largest size is fetched"
    );

    // A "PDF" whose bytes are HTML is served as an HTML attachment in a sandbox, under a safe name.
    let document = media_of(&app, &olga, chat_id, 2, "stored").await;
    assert_eq!(document["media"]["content_type"], "text/html");
    assert_eq!(document["media"]["file_name"], "invoice.pdf");
    let served = app
        .client
        .get(app.url(&format!("/api/messages/{}/download_media/", document["id"])))
        .header("Authorization", format!("Token {olga}"))
        .send()
        .await
        .unwrap();
    let disposition = served.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("invoice.pdf"),
        "{disposition}"
    );
    assert!(
        served.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), HTML);

    // Over the Bot API limit, by Telegram's declared size or by its refusal: marked, not fetched.
    let huge = media_of(&app, &olga, chat_id, 3, "too_large").await;
    assert_eq!(huge["media"]["file_size"], 30 * 1024 * 1024);
    assert!(
        app.bot_api
            .calls_of("getFile")
            .iter()
            .all(|c| c.params["file_id"] != "video-huge")
    );
    let refused = media_of(&app, &olga, chat_id, 4, "too_large").await;
    assert_eq!(
        app.bot_api.calls_of("getFile").len(),
        4,
        "three files asked for, one ask retried after the 5xx"
    );
    let conflict = app
        .get(refused["media"]["url"].as_str().unwrap(), Some(&olga))
        .await;
    assert_eq!(
        (conflict.status, conflict.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("media_too_large"))
    );

    // Pavel, who does not hold the chat, gets nothing.
    assert_eq!(
        app.get(photo["media"]["url"].as_str().unwrap(), Some(&pavel))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/api/messages/{}/download_media/", photo["id"]),
            Some(&pavel)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(photo["media"]["url"].as_str().unwrap(), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let text_only = app
        .get(
            &format!(
                "/api/messages/{}/download_media/",
                photo["id"].as_i64().unwrap() + 100
            ),
            Some(&olga),
        )
        .await;
    assert_eq!(text_only.status, StatusCode::NOT_FOUND);

    // Uploads: the bytes decide, not the name or the declared type.
    let (status, png) = upload(&app, &olga, "setup.exe", "text/html", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{png}");
    assert_eq!(
        (png["content_type"].as_str(), png["file_name"].as_str()),
        (Some("image/png"), Some("setup.exe"))
    );
    let (status, body) = upload(
        &app,
        &olga,
        "photo.png",
        "image/png",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("file_type_not_allowed"))
    );
    let (status, body) = upload(&app, &olga, "page.png", "image/png", HTML.to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("file_type_not_allowed"))
    );
    let (status, _) = upload(&app, &olga, "big.txt", "text/plain", vec![b'a'; 200 * 1024]).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status}"
    );
    assert_eq!(
        app.get(&format!("/api/media/{}/", png["id"]), Some(&pavel))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "uploads are private"
    );

    // Sending an upload: multipart sendPhoto with the caption; an upload is sent once; others cannot use it.
    let stolen = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&pavel),
            json!({"file_id": png["id"]}),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let sent = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&olga),
            json!({"file_id": png["id"], "text": "your receipt"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(
        (
            sent.body["message_type"].as_str(),
            sent.body["media"]["id"].as_i64()
        ),
        (Some("photo"), png["id"].as_i64())
    );
    app.message_reaching(&olga, sent.body["id"].as_i64().unwrap(), "sent")
        .await;
    let call = app.bot_api.calls_of("sendPhoto").pop().unwrap();
    assert_eq!(call.params["caption"], "your receipt");
    assert_eq!(call.params["chat_id"], "5050");
    let (field, name, size, content_type) = call.upload.unwrap();
    assert_eq!(
        (field.as_str(), name.as_str(), size, content_type.as_str()),
        ("photo", "setup.exe", PNG.len(), "image/png")
    );
    let again = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&olga),
            json!({"file_id": png["id"]}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_file"))
    );

    // Each kind goes with its own send method and multipart field.
    let samples: [(&str, Vec<u8>, &str, &str, &str); 4] = [
        (
            "clip.mp4",
            [&[0, 0, 0, 0x18][..], b"ftypmp42", &[0, 0, 0, 0], b"mp42isom"].concat(),
            "sendVideo",
            "video",
            "video",
        ),
        (
            "song.mp3",
            [&b"ID3"[..], &[3, 0, 0, 0, 0, 0x0f], &[0xff; 16]].concat(),
            "sendAudio",
            "audio",
            "audio",
        ),
        (
            "note.ogg",
            [&b"OggS"[..], &[0; 24]].concat(),
            "sendVoice",
            "voice",
            "voice",
        ),
        (
            "terms.pdf",
            b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n".to_vec(),
            "sendDocument",
            "document",
            "document",
        ),
    ];
    for (name, bytes, method, field, message_type) in samples {
        let (status, uploaded) = upload(&app, &olga, name, "application/octet-stream", bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {uploaded}");
        let queued = app
            .post(
                &format!("/api/messages/{}/reply/", photo["id"]),
                Some(&olga),
                json!({"file_id": uploaded["id"]}),
            )
            .await;
        assert_eq!(queued.body["message_type"], message_type, "{name}");
        app.message_reaching(&olga, queued.body["id"].as_i64().unwrap(), "sent")
            .await;
        let call = app
            .bot_api
            .calls_of(method)
            .pop()
            .unwrap_or_else(|| panic!("{name}: no {method}"));
        assert_eq!(call.upload.as_ref().map(|u| u.0.as_str()), Some(field), "{name}");
        assert_eq!(
            call.params["reply_parameters"],
            json!({"message_id": 1, "allow_sending_without_reply": true}).to_string(),
            "{name}"
        );
    }

    // The predecessor's media_path works only as the path of one's own upload; a text file goes as a document.
    let (_, notes) = upload(
        &app,
        &olga,
        "notes.txt",
        "application/octet-stream",
        b"order 42: shipped\n".to_vec(),
    )
    .await;
    let by_path = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&olga),
            json!({"media_path": notes["file_path"]}),
        )
        .await;
    assert_eq!(
        (by_path.status, by_path.body["message_type"].as_str()),
        (StatusCode::CREATED, Some("document"))
    );
    app.stop().await;
}
