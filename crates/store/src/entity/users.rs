//! `users`: people who log in (admins and operators).

use crm_core::user::Role;
use sea_orm::entity::prelude::*;

use crate::Db;

/// One user. Deleted users keep their row (history points at them) with `deleted_at` set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique login name; new ones are lowercase ASCII, so that a login is case-insensitive.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// What the user may do.
    pub role: Db<Role>,
    /// Inactive users cannot log in and hold no tokens.
    pub is_active: bool,
    /// How many chats the user may hold at once.
    pub max_chats: i32,
    /// Name shown to colleagues.
    pub display_name: String,
    /// UI language tag.
    pub language: String,
    /// Last successful login.
    pub last_login_at: Option<DateTimeUtc>,
    /// Set when the user was removed.
    pub deleted_at: Option<DateTimeUtc>,
    /// Row creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
