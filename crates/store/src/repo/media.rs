//! Media files: rows for files to download (created with their download job when a message arrives), uploads,
//! and the outcome of each download.

use std::collections::HashMap;

use chrono::Utc;
use crm_core::inbound::MediaRef;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use crate::entity::media_files;
use crate::repo::jobs::{self, NewJob};
use crate::{Store, StoreResult};

/// The job kind that downloads a file.
pub const DOWNLOAD_MEDIA: &str = "download_media";
/// Waiting for its download.
pub const PENDING: &str = "pending";
/// On disk.
pub const STORED: &str = "stored";
/// Over the download limit; can be fetched another way.
pub const TOO_LARGE: &str = "too_large";
/// Could not be downloaded.
pub const FAILED: &str = "failed";

/// The job downloading file `media_file_id`, optionally with a size limit of its own.
fn download_job(media_file_id: i64, max_bytes: Option<u64>) -> NewJob {
    let mut payload = json!({ "media_file_id": media_file_id });
    if let Some(max_bytes) = max_bytes {
        payload["max_bytes"] = json!(max_bytes);
    }
    let mut job = NewJob::now(DOWNLOAD_MEDIA, payload);
    job.max_attempts = 8;
    job
}

/// Records a file of `message_id` to download and queues its download, through `conn` (the transaction that
/// stores the message). A file Telegram says is over `max_bytes` is recorded as too large, with no job.
pub async fn queue_download<C: ConnectionTrait>(
    conn: &C,
    message_id: i64,
    media: &MediaRef,
    policy: crate::repo::inbox::MediaPolicy,
) -> StoreResult<media_files::Model> {
    let now = Utc::now();
    let too_large = media
        .file_size
        .is_some_and(|size| size > policy.max_download_bytes);
    let row = media_files::ActiveModel {
        message_id: Set(Some(message_id)),
        origin: Set("download".to_owned()),
        status: Set(if too_large { TOO_LARGE } else { PENDING }.to_owned()),
        file_name: Set(media
            .file_name
            .as_deref()
            .map(|name| crm_core::media::display_file_name(name, "file"))),
        content_type: Set(media.mime_type.clone()),
        file_size: Set(media.file_size),
        telegram_file_id: Set(Some(media.file_id.clone())),
        telegram_file_unique_id: Set(media.file_unique_id.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    if !too_large {
        let mut job = download_job(row.id, None);
        job.dedupe_key = Some(format!("{DOWNLOAD_MEDIA}:{}", row.id));
        job.pinned_account_id = policy.pinned_account_id;
        jobs::enqueue(conn, job).await?;
    }
    Ok(row)
}

/// A media file by id.
pub async fn find(store: &Store, id: i64) -> StoreResult<Option<media_files::Model>> {
    Ok(media_files::Entity::find_by_id(id).one(store.db()).await?)
}

/// The file of each message among `message_ids` that has one.
pub async fn for_messages(
    store: &Store,
    message_ids: Vec<i64>,
) -> StoreResult<HashMap<i64, media_files::Model>> {
    Ok(media_files::Entity::find()
        .filter(media_files::Column::MessageId.is_in(message_ids))
        .all(store.db())
        .await?
        .into_iter()
        .filter_map(|m| m.message_id.map(|id| (id, m)))
        .collect())
}

/// What a finished download produced.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Path under the media directory.
    pub storage_path: String,
    /// Sniffed MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub file_size: i64,
    /// SHA-256, hex.
    pub sha256: String,
}

async fn set_outcome(
    store: &Store,
    id: i64,
    status: &str,
    stored: Option<StoredFile>,
    error: Option<String>,
    size: Option<i64>,
) -> StoreResult<()> {
    let Some(current) = find(store, id).await? else {
        return Ok(());
    };
    let mut row: media_files::ActiveModel = current.into();
    row.status = Set(status.to_owned());
    if let Some(stored) = stored {
        row.storage_path = Set(Some(stored.storage_path));
        row.content_type = Set(Some(stored.content_type));
        row.file_size = Set(Some(stored.file_size));
        row.sha256 = Set(Some(stored.sha256));
    }
    if size.is_some() {
        row.file_size = Set(size);
    }
    row.error = Set(error);
    row.updated_at = Set(Utc::now());
    row.update(store.db()).await?;
    Ok(())
}

/// Records a stored download.
pub async fn mark_stored(store: &Store, id: i64, stored: StoredFile) -> StoreResult<()> {
    set_outcome(store, id, STORED, Some(stored), None, None).await
}

/// Records a file over the download limit (with its size when known).
pub async fn mark_too_large(store: &Store, id: i64, size: Option<i64>) -> StoreResult<()> {
    set_outcome(
        store,
        id,
        TOO_LARGE,
        None,
        Some("too large to download".into()),
        size,
    )
    .await
}

/// Records a download that failed for good.
pub async fn mark_failed(store: &Store, id: i64, reason: &str) -> StoreResult<()> {
    set_outcome(store, id, FAILED, None, Some(reason.to_owned()), None).await
}

/// An operator's upload, already written to disk.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The uploader.
    pub user_id: i64,
    /// Where it was written, with its sniffed type, size and hash.
    pub file: StoredFile,
    /// Its display name.
    pub file_name: String,
}

/// Records an upload; it belongs to no message until it is sent.
pub async fn create_upload(store: &Store, upload: NewUpload) -> StoreResult<media_files::Model> {
    let now = Utc::now();
    Ok(media_files::ActiveModel {
        uploaded_by_user_id: Set(Some(upload.user_id)),
        origin: Set("upload".to_owned()),
        status: Set(STORED.to_owned()),
        storage_path: Set(Some(upload.file.storage_path)),
        file_name: Set(Some(upload.file_name)),
        content_type: Set(Some(upload.file.content_type)),
        file_size: Set(Some(upload.file.file_size)),
        sha256: Set(Some(upload.file.sha256)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.db())
    .await?)
}

/// An upload by `user_id` (or any, for `None`) not yet attached to a message, found by id or by its path.
pub async fn find_unsent_upload(
    store: &Store,
    user_id: Option<i64>,
    id: Option<i64>,
    storage_path: Option<&str>,
) -> StoreResult<Option<media_files::Model>> {
    let mut query = media_files::Entity::find()
        .filter(media_files::Column::Origin.eq("upload"))
        .filter(media_files::Column::MessageId.is_null());
    if let Some(user_id) = user_id {
        query = query.filter(media_files::Column::UploadedByUserId.eq(user_id));
    }
    match (id, storage_path) {
        (Some(id), _) => query = query.filter(media_files::Column::Id.eq(id)),
        (None, Some(path)) => query = query.filter(media_files::Column::StoragePath.eq(path)),
        (None, None) => return Ok(None),
    }
    Ok(query.one(store.db()).await?)
}

/// Largest file Telegram lets a personal account download (a premium account's upload limit).
pub const MAX_ON_DEMAND_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Queues a download again on request, without the automatic size limit: for a file of a personal account that
/// was too large, or failed. False if the file is not in one of those states (already stored or pending).
pub async fn fetch_on_demand(store: &Store, id: i64, account_id: i64) -> StoreResult<bool> {
    use sea_orm::TransactionTrait;
    use sea_orm::sea_query::Expr;
    let txn = store.db().begin().await?;
    let reset = media_files::Entity::update_many()
        .col_expr(media_files::Column::Status, Expr::value(PENDING))
        .col_expr(media_files::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(media_files::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(media_files::Column::Id.eq(id))
        .filter(media_files::Column::Status.is_in([TOO_LARGE, FAILED]))
        .exec(&txn)
        .await?;
    if reset.rows_affected == 1 {
        let job = download_job(id, Some(MAX_ON_DEMAND_BYTES)).pinned_to(account_id);
        jobs::enqueue(&txn, job).await?;
    }
    txn.commit().await?;
    Ok(reset.rows_affected == 1)
}
