//! The audit log: append an entry, read the newest.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, QuerySelect, Set};
use serde_json::Value;

use crate::entity::audit_log;
use crate::{Store, StoreResult};

/// One action to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Who acted.
    pub actor_user_id: Option<i64>,
    /// What happened, `noun.verb`.
    pub action: &'a str,
    /// Kind of object.
    pub target_type: Option<&'a str>,
    /// Object id.
    pub target_id: Option<i64>,
    /// Extra facts; never secrets.
    pub details: Value,
    /// Client address.
    pub ip: Option<String>,
}

/// Appends an entry.
pub async fn record(store: &Store, entry: AuditEntry<'_>) -> StoreResult<()> {
    audit_log::ActiveModel {
        actor_user_id: Set(entry.actor_user_id),
        action: Set(entry.action.to_owned()),
        target_type: Set(entry.target_type.map(str::to_owned)),
        target_id: Set(entry.target_id),
        details: Set(entry.details),
        ip: Set(entry.ip),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(store.writes())
    .await?;
    Ok(())
}

/// The newest `limit` entries, newest first.
/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Who acted.
    pub actor_user_id: Option<i64>,
    /// What they did, for example `account.removed`.
    pub action: String,
    /// The kind of object.
    pub target_type: Option<String>,
    /// The object.
    pub target_id: Option<i64>,
    /// Details.
    pub details: Value,
    /// Their address.
    pub ip: Option<String>,
    /// When.
    pub created_at: chrono::DateTime<Utc>,
}

/// The newest `limit` entries, newest first.
pub async fn newest(store: &Store, limit: u64) -> StoreResult<Vec<AuditRecord>> {
    Ok(audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .limit(limit)
        .all(store.db())
        .await?
        .into_iter()
        .map(|row| AuditRecord {
            actor_user_id: row.actor_user_id,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            details: row.details,
            ip: row.ip,
            created_at: row.created_at,
        })
        .collect())
}
