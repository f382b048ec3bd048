//! Creating admins: the first `admin` on a fresh database, and `crm create-admin` for scripts and people.

use anyhow::{Context, bail};
use crm_core::ids::UserId;
use crm_core::password::hash_password;
use crm_core::user::{self, DEFAULT_MAX_CHATS, Role};
use crm_store::Store;
use crm_store::repo::users::{self, NewUser, UserChange};
use rand::Rng;

/// Username of the admin created on the first start.
pub const FIRST_ADMIN: &str = "admin";

/// A random password of 20 letters and digits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// When no active admin exists, creates `admin` with `password` (or a random one, logged once). Returns the
/// password it set, if it created the user.
pub async fn ensure_first_admin(store: &Store, password: Option<&str>) -> anyhow::Result<Option<String>> {
    if users::count_active_admins(store).await? > 0 {
        return Ok(None);
    }
    if users::find_by_username(store, FIRST_ADMIN).await?.is_some() {
        tracing::warn!("there is no active admin and the username `admin` is taken: run `crm create-admin`");
        return Ok(None);
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(password) => (password.to_owned(), false),
        None => (random_password(), true),
    };
    create_admin(store, FIRST_ADMIN, &password, FIRST_ADMIN, false).await?;
    if generated {
        tracing::warn!(
            username = FIRST_ADMIN,
            password = %password,
            "created the first admin; this password is shown only once: log in and change it"
        );
    } else {
        tracing::info!(
            username = FIRST_ADMIN,
            "created the first admin with the password from CRM_ADMIN_PASSWORD"
        );
    }
    Ok(Some(password))
}

/// Creates an admin, or with `update_existing` resets an existing user's password and makes them an active admin.
pub async fn create_admin(
    store: &Store,
    username: &str,
    password: &str,
    display_name: &str,
    update_existing: bool,
) -> anyhow::Result<UserId> {
    let username = user::canonical_username(username)?;
    let username = username.as_str();
    user::validate_password(password, username)?;
    user::validate_display_name(display_name)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .context("hashing failed")??;
    if let Some(existing) = users::find_by_username(store, username).await? {
        if !update_existing {
            bail!(
                "user `{username}` already exists; pass --update to reset its password and make it an admin"
            );
        }
        let change = UserChange {
            role: Some(Role::Admin),
            is_active: Some(true),
            password_hash: Some(hash),
            ..UserChange::default()
        };
        users::update(store, existing.id, change).await?;
        crm_store::repo::tokens::revoke_all_for_user(store, existing.id).await?;
        return Ok(existing.id);
    }
    let created = users::create(
        store,
        NewUser {
            username: username.to_owned(),
            password_hash: hash,
            role: Role::Admin,
            display_name: display_name.to_owned(),
            language: "ru".to_owned(),
            max_chats: DEFAULT_MAX_CHATS,
            is_active: true,
        },
    )
    .await?;
    Ok(created.id)
}
