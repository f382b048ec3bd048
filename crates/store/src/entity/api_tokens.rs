//! `api_tokens`: bearer tokens, stored as SHA-256 hashes.

use sea_orm::entity::prelude::*;

/// One issued token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// SHA-256 of the token, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Where it came from (`login`, `cli`).
    pub label: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTimeUtc>,
    /// Set when revoked; a revoked token never authenticates again.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
