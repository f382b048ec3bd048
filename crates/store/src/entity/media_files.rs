//! `media_files`: files downloaded from Telegram or uploaded by operators, stored under generated names.

use crm_core::media::{MediaOrigin, MediaStatus};
use sea_orm::entity::prelude::*;

use crate::Db;

/// One stored (or to-be-downloaded) file.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media_files")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The message it belongs to (an upload has none until it is sent).
    pub message_id: Option<i64>,
    /// The user who uploaded it.
    pub uploaded_by_user_id: Option<i64>,
    /// Download or upload.
    pub origin: Db<MediaOrigin>,
    /// Where the file stands.
    pub status: Db<MediaStatus>,
    /// Path under the media directory; generated, never from user input.
    pub storage_path: Option<String>,
    /// Original file name, sanitised, for display and downloads.
    pub file_name: Option<String>,
    /// Content type sniffed from the bytes.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub file_size: Option<i64>,
    /// SHA-256 of the content, hex.
    pub sha256: Option<String>,
    /// Telegram's file id (to download or re-send).
    pub telegram_file_id: Option<String>,
    /// Telegram's stable unique file id.
    pub telegram_file_unique_id: Option<String>,
    /// Why the download failed.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
