//! `audit_log`: who did what to which object, kept for admins.

use sea_orm::entity::prelude::*;

/// One recorded action.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Who acted (none for the system or an anonymous caller).
    pub actor_user_id: Option<i64>,
    /// What happened, for example `operator.created`.
    pub action: String,
    /// Kind of object acted on.
    pub target_type: Option<String>,
    /// Id of the object acted on.
    pub target_id: Option<i64>,
    /// Extra facts (never secrets).
    pub details: Json,
    /// Client address.
    pub ip: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
