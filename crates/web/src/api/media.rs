//! Files: `GET /api/media/{id}` and `GET /api/messages/{id}/download_media/` stream a file to users allowed to
//! see its chat (or who uploaded it), and `POST /api/upload/` accepts a file whose bytes are of an allowed kind.
//! There is no public media directory.

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::CoreError;
use crm_core::ids::{MediaFileId, MessageId};
use crm_core::media::{
    Category, MediaFile, MediaStatus, display_file_name, inline_viewable, sniff, upload_allowed,
};
use crm_store::files;
use crm_store::repo::media::{self as media_repo, NewUpload, StoredFile};
use crm_store::repo::messages as message_repo;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// Whether the caller may fetch `row`: through a message they can see, or as the uploader (or an admin).
async fn may_read(state: &AppState, caller: &CurrentUser, row: &MediaFile) -> ApiResult<bool> {
    match row.message_id {
        Some(message_id) => Ok(
            message_repo::find_visible(&state.store, caller.viewer(), message_id)
                .await?
                .is_some(),
        ),
        None => Ok(caller.is_admin() || row.uploaded_by_user_id == Some(caller.user.id)),
    }
}

fn unavailable(code: &'static str, message: String) -> ApiError {
    ApiError::Core(CoreError::Conflict { code, message })
}

fn category_of(content_type: &str) -> Category {
    let base = content_type.split(';').next().unwrap_or_default().trim();
    match base {
        b if b.starts_with("image/") && b != "image/svg+xml" => Category::Image,
        b if b.starts_with("video/") => Category::Video,
        b if b.starts_with("audio/") => Category::Audio,
        _ => Category::Other,
    }
}

async fn serve(state: &AppState, row: MediaFile) -> ApiResult<Response> {
    match row.status {
        MediaStatus::Stored => {}
        MediaStatus::Pending => {
            return Err(unavailable(
                "media_pending",
                "The file is still being downloaded; try again shortly.".into(),
            ));
        }
        MediaStatus::TooLarge => {
            let size = row
                .file_size
                .map_or_else(|| "unknown size".to_owned(), |s| format!("{s} bytes"));
            return Err(unavailable(
                "media_too_large",
                format!(
                    "The file is too large to download automatically ({size}); files of personal accounts can be \
                     fetched with POST /api/media/{}/fetch/.",
                    row.id
                ),
            ));
        }
        MediaStatus::Failed => {
            return Err(unavailable(
                "media_failed",
                row.error
                    .unwrap_or_else(|| "The file could not be downloaded.".into()),
            ));
        }
    }
    let path = row
        .storage_path
        .as_deref()
        .and_then(|p| files::resolve(&state.settings.media_dir, p))
        .ok_or_else(|| ApiError::Internal(format!("media file {} has no valid storage path", row.id)))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|error| ApiError::Internal(format!("media file {}: {error}", row.id)))?;
    let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let content_type = row
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    let disposition = if inline_viewable(category_of(&content_type)) {
        "inline"
    } else {
        "attachment"
    };
    let name = display_file_name(
        row.file_name.as_deref().unwrap_or_default(),
        &format!("file-{}", row.id),
    );
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .collect();
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::CONTENT_LENGTH, length.to_string());
    set(
        header::CONTENT_DISPOSITION,
        format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox".into(),
    );
    set(header::CACHE_CONTROL, "private, max-age=3600".into());
    Ok(response)
}

/// Streams a stored file the caller may see.
#[utoipa::path(get, path = "/api/media/{id}/", tag = "media", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, description = "The file"), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Pending, too large or failed", body = crate::error::ErrorBody)))]
pub async fn file(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let row = media_repo::find(&state.store, MediaFileId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("File"))?;
    if !may_read(&state, &caller, &row).await? {
        return Err(ApiError::not_found("File"));
    }
    serve(&state, row).await
}

/// Streams the file of a message the caller may see (the predecessor's path).
#[utoipa::path(get, path = "/api/messages/{id}/download_media/", tag = "media", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, description = "The file"), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn download_media(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    message_repo::find_visible(&state.store, caller.viewer(), MessageId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    let row = media_repo::of_message(&state.store, MessageId(id))
        .await?
        .ok_or_else(|| ApiError::Core(CoreError::NotFound("Media not available".into())))?;
    serve(&state, row).await
}

/// A stored upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOut {
    /// Id to send it with (`file_id`).
    pub id: i64,
    /// Opaque path of the stored file (accepted as the predecessor's `media_path`).
    pub file_path: String,
    /// Original name, made safe.
    pub file_name: String,
    /// Size in bytes.
    pub file_size: i64,
    /// MIME type from the bytes.
    pub content_type: String,
}

fn too_large(status_limit: usize) -> ApiError {
    ApiError::TooLarge {
        code: "file_too_large",
        message: format!(
            "File too large. Maximum size is {} MB",
            status_limit / (1024 * 1024)
        ),
    }
}

fn quota_exceeded(quota: u64) -> ApiError {
    ApiError::TooLarge {
        code: "upload_quota_exceeded",
        message: format!(
            "Your uploads not sent yet take more than {} MB; send or wait for them to expire before uploading more.",
            quota / (1024 * 1024)
        ),
    }
}

/// Why reading a multipart body failed: over the size limit, or cut off / malformed.
fn multipart_error(error: &axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::invalid(
            "upload_incomplete",
            format!(
                "The upload could not be read to its end ({}); send it again.",
                error.body_text()
            ),
        )
    }
}

/// Accepts a file (multipart field `file`) whose bytes are an image, video, audio, PDF or office document,
/// archive or plain text; the declared type and the extension are not trusted. The file is written to disk as it
/// arrives (memory holds a chunk, not the file), counted against the uploader's quota of unsent uploads
/// (`UPLOAD_QUOTA_BYTES`), and removed after `UPLOAD_RETENTION_HOURS` if it is never sent.
#[utoipa::path(post, path = "/api/upload/", tag = "media", security(("token" = [])),
    request_body(content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 201, body = UploadOut),
        (status = 400, description = "No file, an empty, cut-off or disallowed file", body = crate::error::ErrorBody),
        (status = 413, description = "Too large, or over the quota", body = crate::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: CurrentUser,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<UploadOut>)> {
    let limit = state.settings.max_upload_bytes;
    let quota = state.settings.upload_quota_bytes;
    let held =
        u64::try_from(media_repo::unsent_upload_bytes(&state.store, caller.user.id).await?).unwrap_or(0);
    if held >= quota {
        return Err(quota_exceeded(quota));
    }
    let mut found = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| multipart_error(&error, limit))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(str::to_owned).unwrap_or_default();
        let mut incoming = files::IncomingFile::create(&state.settings.media_dir)
            .await
            .map_err(|error| ApiError::Internal(format!("cannot receive an upload: {error}")))?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|error| multipart_error(&error, limit))?
        {
            if incoming.size() + chunk.len() as u64 > limit as u64 {
                return Err(too_large(limit));
            }
            if held + incoming.size() + chunk.len() as u64 > quota {
                return Err(quota_exceeded(quota));
            }
            incoming.write(&chunk).await.map_err(|error| {
                ApiError::Core(CoreError::unavailable_from(
                    "The file could not be stored; try again later.",
                    error,
                ))
            })?;
        }
        found = Some((name, incoming));
        break;
    }
    let (name, incoming) =
        found.ok_or_else(|| ApiError::invalid("no_file", "No file provided (multipart field `file`)."))?;
    if incoming.size() == 0 {
        return Err(ApiError::invalid("empty_file", "The file is empty."));
    }
    let sniffed = sniff(incoming.head());
    if !upload_allowed(sniffed.category) {
        return Err(ApiError::invalid(
            "file_type_not_allowed",
            format!(
                "File type not allowed ({}). Allowed: images, video, audio, PDF and office documents, archives, plain text.",
                sniffed.content_type
            ),
        ));
    }
    let size = i64::try_from(incoming.size()).unwrap_or(i64::MAX);
    let (storage_path, sha256) = incoming.keep(&sniffed.extension).await.map_err(|error| {
        ApiError::Core(CoreError::unavailable_from(
            "The file could not be stored; try again later.",
            error,
        ))
    })?;
    let file_name = display_file_name(&name, &format!("file.{}", sniffed.extension));
    let file = StoredFile {
        storage_path: storage_path.clone(),
        content_type: sniffed.content_type.clone(),
        file_size: size,
        sha256,
    };
    let row = media_repo::create_upload(
        &state.store,
        NewUpload {
            user_id: caller.user.id,
            file,
            file_name: file_name.clone(),
        },
    )
    .await;
    let row = match row {
        Ok(row) => row,
        Err(error) => {
            // Nothing records the file: it goes.
            let _ = files::remove_file(&state.settings.media_dir, &storage_path).await;
            return Err(error.into());
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(UploadOut {
            id: row.id.0,
            file_path: storage_path,
            file_name,
            file_size: size,
            content_type: sniffed.content_type,
        }),
    ))
}

/// The answer to an on-demand fetch.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchQueued {
    /// `pending`: the download is queued; `message_updated` follows when it is stored or fails.
    pub status: &'static str,
    /// The file.
    pub media_file_id: i64,
}

/// Fetches a file a personal account did not download automatically (over `MEDIA_AUTO_DOWNLOAD_MAX_SIZE`, or
/// failed before): the download is queued on the instance connected to the account.
#[utoipa::path(post, path = "/api/media/{id}/fetch/", tag = "media", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 202, body = FetchQueued), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<FetchQueued>)> {
    state.inbox.fetch_media(&caller.user, MediaFileId(id)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(FetchQueued {
            status: "pending",
            media_file_id: id,
        }),
    ))
}
