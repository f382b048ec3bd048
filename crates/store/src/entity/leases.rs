//! `leases`: named, expiring ownership (one instance per personal account or polling bot), with a fencing counter.

use sea_orm::entity::prelude::*;

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leases")]
pub struct Model {
    /// Lease name, for example `account:7`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Instance id of the current holder.
    pub holder: String,
    /// Increases on every change of holder; work carries it to reject stale owners.
    pub fencing_token: i64,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTimeUtc,
    /// Last renewal.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
