//! API tokens: issue, authenticate, revoke.

use chrono::{Duration, Utc};
use crm_core::ids::UserId;
use crm_core::token::{generate_token, hash_token};
use crm_core::user::User;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entity::{api_tokens, users};
use crate::{Store, StoreResult};

/// `last_used_at` is written at most this often per token, so authentication stays a read.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

/// Issues a new token for `user_id`; returns the clear token (shown once) and its row.
pub async fn issue(store: &Store, user_id: UserId, label: &str) -> StoreResult<(String, i64)> {
    let token = generate_token();
    let model = api_tokens::ActiveModel {
        user_id: Set(user_id.0),
        token_hash: Set(hash_token(&token)),
        label: Set(label.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let row = model.insert(store.writes()).await?;
    Ok((token, row.id))
}

/// The token row and its user, if the token is live and the user active and not removed.
pub async fn authenticate(store: &Store, token: &str) -> StoreResult<Option<(i64, User)>> {
    let Some(row) = api_tokens::Entity::find()
        .filter(api_tokens::Column::TokenHash.eq(hash_token(token)))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .one(store.db())
        .await?
    else {
        return Ok(None);
    };
    let user = users::Entity::find_by_id(row.user_id)
        .filter(users::Column::IsActive.eq(true))
        .filter(users::Column::DeletedAt.is_null())
        .one(store.db())
        .await?;
    let Some(user) = user else {
        return Ok(None);
    };
    let now = Utc::now();
    if row
        .last_used_at
        .is_none_or(|used| now - used > LAST_USED_GRANULARITY)
    {
        api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.eq(row.id))
            .exec(store.writes())
            .await?;
    }
    Ok(Some((row.id, User::from(user))))
}

/// Revokes one token by id; true if it was live.
pub async fn revoke(store: &Store, token_id: i64) -> StoreResult<bool> {
    let result = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_tokens::Column::Id.eq(token_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected > 0)
}

/// Revokes every live token of a user; returns how many.
pub async fn revoke_all_for_user(store: &Store, user_id: UserId) -> StoreResult<u64> {
    let result = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_tokens::Column::UserId.eq(user_id.0))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected)
}

/// Deletes tokens revoked more than `older_than` ago; returns how many.
pub async fn purge_revoked(store: &Store, older_than: Duration) -> StoreResult<u64> {
    let result = api_tokens::Entity::delete_many()
        .filter(api_tokens::Column::RevokedAt.lt(Utc::now() - older_than))
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected)
}
