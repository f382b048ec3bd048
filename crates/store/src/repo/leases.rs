//! Leases: named, expiring ownership held by one instance at a time (a polled bot, later a personal account).
//! Every change of holder raises the fencing token, so work done under an older token can be told apart.

use chrono::{Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, Set};

use crm_core::ports::Lease;

use crate::entity::leases;
use crate::{Store, StoreResult};

/// Takes `name` for `holder` for `ttl` if it is free, expired, or already `holder`'s; `None` if another
/// instance holds it.
pub async fn acquire(store: &Store, name: &str, holder: &str, ttl: Duration) -> StoreResult<Option<Lease>> {
    let now = Utc::now();
    let fresh = leases::ActiveModel {
        name: Set(name.to_owned()),
        holder: Set(holder.to_owned()),
        fencing_token: Set(1),
        expires_at: Set(now + ttl),
        updated_at: Set(now),
    };
    leases::Entity::insert(fresh)
        .on_conflict_do_nothing_on([leases::Column::Name])
        .exec(store.writes())
        .await?;
    let taken = leases::Entity::update_many()
        .col_expr(
            leases::Column::FencingToken,
            Expr::col(leases::Column::FencingToken).add(1),
        )
        .col_expr(leases::Column::Holder, Expr::value(holder))
        .col_expr(leases::Column::ExpiresAt, Expr::value(now + ttl))
        .col_expr(leases::Column::UpdatedAt, Expr::value(now))
        .filter(leases::Column::Name.eq(name))
        .filter(
            Condition::any()
                .add(leases::Column::ExpiresAt.lt(now))
                .add(leases::Column::Holder.eq(holder)),
        )
        .exec(store.writes())
        .await?;
    if taken.rows_affected == 0 {
        return Ok(None);
    }
    let row = leases::Entity::find_by_id(name.to_owned())
        .one(store.writes())
        .await?;
    Ok(row.filter(|r| r.holder == holder).map(|r| Lease {
        fencing_token: r.fencing_token,
    }))
}

/// Extends a held lease; false if it was lost (expired and taken, or released).
pub async fn renew(
    store: &Store,
    name: &str,
    holder: &str,
    lease: Lease,
    ttl: Duration,
) -> StoreResult<bool> {
    let now = Utc::now();
    let result = leases::Entity::update_many()
        .col_expr(leases::Column::ExpiresAt, Expr::value(now + ttl))
        .col_expr(leases::Column::UpdatedAt, Expr::value(now))
        .filter(leases::Column::Name.eq(name))
        .filter(leases::Column::Holder.eq(holder))
        .filter(leases::Column::FencingToken.eq(lease.fencing_token))
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives a held lease up so another instance may take it at once.
pub async fn release(store: &Store, name: &str, holder: &str, lease: Lease) -> StoreResult<()> {
    leases::Entity::update_many()
        .col_expr(
            leases::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .filter(leases::Column::Name.eq(name))
        .filter(leases::Column::Holder.eq(holder))
        .filter(leases::Column::FencingToken.eq(lease.fencing_token))
        .exec(store.writes())
        .await?;
    Ok(())
}

/// The current holder of `name`, if the lease is live.
pub async fn holder(store: &Store, name: &str) -> StoreResult<Option<String>> {
    let row = leases::Entity::find_by_id(name.to_owned())
        .one(store.db())
        .await?;
    Ok(row.filter(|r| r.expires_at > Utc::now()).map(|r| r.holder))
}
