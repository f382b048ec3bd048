//! Media files outside the message path: a file by id, operators' uploads (recorded once written to disk), and
//! finding an upload not sent yet.

use chrono::Utc;
use crm_core::ids::{MediaFileId, UserId};
use crm_core::media::{MediaFile, MediaOrigin, MediaStatus};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use crate::entity::media_files;
use crate::{Db, Store, StoreResult};

/// A media file by id.
pub async fn find(store: &Store, id: MediaFileId) -> StoreResult<Option<MediaFile>> {
    Ok(media_files::Entity::find_by_id(id.0)
        .one(store.db())
        .await?
        .map(MediaFile::from))
}

/// What a written file is.
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

/// An operator's upload, already written to disk.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The uploader.
    pub user_id: UserId,
    /// Where it was written, with its sniffed type, size and hash.
    pub file: StoredFile,
    /// Its display name.
    pub file_name: String,
}

/// Records an upload; it belongs to no message until it is sent.
pub async fn create_upload(store: &Store, upload: NewUpload) -> StoreResult<MediaFile> {
    let now = Utc::now();
    Ok(MediaFile::from(
        media_files::ActiveModel {
            uploaded_by_user_id: Set(Some(upload.user_id.0)),
            origin: Set(Db(MediaOrigin::Upload)),
            status: Set(Db(MediaStatus::Stored)),
            storage_path: Set(Some(upload.file.storage_path)),
            file_name: Set(Some(upload.file_name)),
            content_type: Set(Some(upload.file.content_type)),
            file_size: Set(Some(upload.file.file_size)),
            sha256: Set(Some(upload.file.sha256)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(store.writes())
        .await?,
    ))
}

/// Bytes of `user_id`'s uploads not sent yet (what the per-user upload quota counts).
pub async fn unsent_upload_bytes(store: &Store, user_id: UserId) -> StoreResult<i64> {
    let sizes: Vec<Option<i64>> = media_files::Entity::find()
        .select_only()
        .column(media_files::Column::FileSize)
        .filter(media_files::Column::Origin.eq(Db(MediaOrigin::Upload)))
        .filter(media_files::Column::MessageId.is_null())
        .filter(media_files::Column::UploadedByUserId.eq(user_id.0))
        .into_tuple()
        .all(store.db())
        .await?;
    Ok(sizes.into_iter().flatten().sum())
}

/// Deletes the records of uploads never sent and created before `older_than` ago; returns their storage paths.
pub async fn take_unsent_uploads(store: &Store, older_than: chrono::Duration) -> StoreResult<Vec<String>> {
    let cutoff = Utc::now() - older_than;
    let stale: Vec<(i64, Option<String>)> = media_files::Entity::find()
        .select_only()
        .column(media_files::Column::Id)
        .column(media_files::Column::StoragePath)
        .filter(media_files::Column::Origin.eq(Db(MediaOrigin::Upload)))
        .filter(media_files::Column::MessageId.is_null())
        .filter(media_files::Column::CreatedAt.lt(cutoff))
        .limit(1_000)
        .into_tuple()
        .all(store.db())
        .await?;
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    // Only rows still unsent, locked until the commit, are deleted: one sent meanwhile keeps its file.
    let ids: Vec<i64> = stale.iter().map(|(id, _)| *id).collect();
    let txn = store.begin_write().await?;
    let still_unsent: Vec<(i64, Option<String>)> = media_files::Entity::find()
        .select_only()
        .column(media_files::Column::Id)
        .column(media_files::Column::StoragePath)
        .filter(media_files::Column::Id.is_in(ids))
        .filter(media_files::Column::MessageId.is_null())
        .lock_exclusive()
        .into_tuple()
        .all(&txn)
        .await?;
    let gone: Vec<i64> = still_unsent.iter().map(|(id, _)| *id).collect();
    media_files::Entity::delete_many()
        .filter(media_files::Column::Id.is_in(gone))
        .filter(media_files::Column::MessageId.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(still_unsent.into_iter().filter_map(|(_, path)| path).collect())
}

/// An upload by `user_id` (or anyone's, for `None`) not attached to a message yet, found by id or (the
/// predecessor's `media_path`) by its storage path.
pub async fn find_unsent_upload(
    store: &Store,
    user_id: Option<UserId>,
    id: Option<MediaFileId>,
    storage_path: Option<&str>,
) -> StoreResult<Option<MediaFile>> {
    let mut query = media_files::Entity::find()
        .filter(media_files::Column::Origin.eq(Db(MediaOrigin::Upload)))
        .filter(media_files::Column::MessageId.is_null());
    if let Some(user_id) = user_id {
        query = query.filter(media_files::Column::UploadedByUserId.eq(user_id.0));
    }
    match (id, storage_path) {
        (Some(id), _) => query = query.filter(media_files::Column::Id.eq(id.0)),
        (None, Some(path)) => query = query.filter(media_files::Column::StoragePath.eq(path)),
        (None, None) => return Ok(None),
    }
    Ok(query.one(store.db()).await?.map(MediaFile::from))
}

/// The file of message `message_id`, if it has one.
pub async fn of_message(
    store: &Store,
    message_id: crm_core::ids::MessageId,
) -> StoreResult<Option<MediaFile>> {
    Ok(media_files::Entity::find()
        .filter(media_files::Column::MessageId.eq(message_id.0))
        .one(store.db())
        .await?
        .map(MediaFile::from))
}
