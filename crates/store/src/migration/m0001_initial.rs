//! The first schema: users and tokens, accounts, chats, messages, media, assignments, jobs, leases, audit log.

use sea_orm_migration::prelude::*;

use super::columns::Columns;

/// Creates every table and index of the first release.
#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(text: &str) -> Alias {
    Alias::new(text)
}

fn foreign_key(from: &str, column: &str, to: &str, on_delete: ForeignKeyAction) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{column}"))
        .from(name(from), name(column))
        .to(name(to), name("id"))
        .on_delete(on_delete)
        .take()
}

fn index(table: &str, index_name: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut statement = Index::create();
    statement.name(index_name).table(name(table)).if_not_exists();
    for column in columns {
        statement.col(name(column));
    }
    if unique {
        statement.unique();
    }
    statement
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        for table in tables(&c) {
            manager.create_table(table).await?;
        }
        for statement in indexes() {
            manager.create_index(statement).await?;
        }
        Ok(())
    }
}

fn tables(c: &Columns) -> Vec<TableCreateStatement> {
    use ForeignKeyAction::{Cascade, SetNull};
    vec![
        c.table(name("users"))
            .col(c.id(name("id")))
            .col(
                ColumnDef::new(name("username"))
                    .string_len(150)
                    .not_null()
                    .unique_key(),
            )
            .col(ColumnDef::new(name("password_hash")).string_len(255).not_null())
            .col(ColumnDef::new(name("role")).string_len(16).not_null())
            .col(
                ColumnDef::new(name("is_active"))
                    .boolean()
                    .not_null()
                    .default(true),
            )
            .col(ColumnDef::new(name("max_chats")).integer().not_null().default(50))
            .col(
                ColumnDef::new(name("display_name"))
                    .string_len(150)
                    .not_null()
                    .default(""),
            )
            .col(
                ColumnDef::new(name("language"))
                    .string_len(16)
                    .not_null()
                    .default("ru"),
            )
            .col(c.timestamp(name("last_login_at")).null())
            .col(c.timestamp(name("deleted_at")).null())
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .take(),
        c.table(name("api_tokens"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("user_id")).big_integer().not_null())
            .col(
                ColumnDef::new(name("token_hash"))
                    .string_len(64)
                    .not_null()
                    .unique_key(),
            )
            .col(ColumnDef::new(name("label")).string_len(32).not_null())
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("last_used_at")).null())
            .col(c.timestamp(name("revoked_at")).null())
            .foreign_key(&mut foreign_key("api_tokens", "user_id", "users", Cascade))
            .take(),
        c.table(name("accounts"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("name")).string_len(255).not_null())
            .col(ColumnDef::new(name("account_type")).string_len(16).not_null())
            .col(ColumnDef::new(name("status")).string_len(32).not_null())
            .col(
                ColumnDef::new(name("phone_number"))
                    .string_len(20)
                    .null()
                    .unique_key(),
            )
            .col(ColumnDef::new(name("api_id")).big_integer().null())
            .col(ColumnDef::new(name("api_hash_sealed")).text().null())
            .col(c.long_text(name("session_sealed")).null())
            .col(ColumnDef::new(name("bot_token_sealed")).text().null())
            .col(
                ColumnDef::new(name("bot_token_lookup"))
                    .string_len(64)
                    .null()
                    .unique_key(),
            )
            .col(ColumnDef::new(name("bot_username")).string_len(64).null())
            .col(ColumnDef::new(name("webhook_secret_sealed")).text().null())
            .col(ColumnDef::new(name("telegram_user_id")).big_integer().null())
            .col(ColumnDef::new(name("first_name")).string_len(255).null())
            .col(ColumnDef::new(name("last_name")).string_len(255).null())
            .col(ColumnDef::new(name("username")).string_len(64).null())
            .col(c.timestamp(name("last_activity")).null())
            .col(ColumnDef::new(name("last_error")).text().null())
            .col(
                ColumnDef::new(name("error_count"))
                    .integer()
                    .not_null()
                    .default(0),
            )
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .take(),
        c.table(name("chats"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("account_id")).big_integer().not_null())
            .col(ColumnDef::new(name("peer_id")).big_integer().not_null())
            .col(ColumnDef::new(name("chat_type")).string_len(16).not_null())
            .col(ColumnDef::new(name("title")).string_len(255).null())
            .col(ColumnDef::new(name("username")).string_len(64).null())
            .col(ColumnDef::new(name("first_name")).string_len(255).null())
            .col(ColumnDef::new(name("last_name")).string_len(255).null())
            .col(
                ColumnDef::new(name("unread_count"))
                    .integer()
                    .not_null()
                    .default(0),
            )
            .col(
                ColumnDef::new(name("message_count"))
                    .integer()
                    .not_null()
                    .default(0),
            )
            .col(c.timestamp(name("last_message_at")).null())
            .col(c.timestamp(name("last_read_at")).null())
            .col(
                ColumnDef::new(name("is_blocked"))
                    .boolean()
                    .not_null()
                    .default(false),
            )
            .col(c.json(name("metadata")).not_null())
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .foreign_key(&mut foreign_key("chats", "account_id", "accounts", Cascade))
            .take(),
        c.table(name("messages"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("chat_id")).big_integer().not_null())
            .col(ColumnDef::new(name("telegram_message_id")).big_integer().null())
            .col(ColumnDef::new(name("direction")).string_len(8).not_null())
            .col(ColumnDef::new(name("message_type")).string_len(16).not_null())
            .col(ColumnDef::new(name("text")).text().null())
            .col(ColumnDef::new(name("caption")).text().null())
            .col(ColumnDef::new(name("sender_id")).big_integer().null())
            .col(ColumnDef::new(name("sender_name")).string_len(255).null())
            .col(ColumnDef::new(name("sender_username")).string_len(64).null())
            .col(ColumnDef::new(name("sent_by_user_id")).big_integer().null())
            .col(ColumnDef::new(name("reply_to_message_id")).big_integer().null())
            .col(ColumnDef::new(name("reply_to_telegram_id")).big_integer().null())
            .col(ColumnDef::new(name("status")).string_len(16).not_null())
            .col(c.timestamp(name("telegram_date")).not_null())
            .col(c.timestamp(name("edited_at")).null())
            .col(
                ColumnDef::new(name("is_deleted"))
                    .boolean()
                    .not_null()
                    .default(false),
            )
            .col(c.json(name("metadata")).not_null())
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .foreign_key(&mut foreign_key("messages", "chat_id", "chats", Cascade))
            .foreign_key(&mut foreign_key("messages", "sent_by_user_id", "users", SetNull))
            .foreign_key(&mut foreign_key(
                "messages",
                "reply_to_message_id",
                "messages",
                SetNull,
            ))
            .take(),
        c.table(name("media_files"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("message_id")).big_integer().null())
            .col(ColumnDef::new(name("uploaded_by_user_id")).big_integer().null())
            .col(ColumnDef::new(name("origin")).string_len(16).not_null())
            .col(ColumnDef::new(name("status")).string_len(16).not_null())
            .col(ColumnDef::new(name("storage_path")).string_len(255).null())
            .col(ColumnDef::new(name("file_name")).string_len(255).null())
            .col(ColumnDef::new(name("content_type")).string_len(127).null())
            .col(ColumnDef::new(name("file_size")).big_integer().null())
            .col(ColumnDef::new(name("sha256")).string_len(64).null())
            .col(ColumnDef::new(name("telegram_file_id")).string_len(255).null())
            .col(
                ColumnDef::new(name("telegram_file_unique_id"))
                    .string_len(64)
                    .null(),
            )
            .col(ColumnDef::new(name("error")).text().null())
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .foreign_key(&mut foreign_key("media_files", "message_id", "messages", Cascade))
            .foreign_key(&mut foreign_key(
                "media_files",
                "uploaded_by_user_id",
                "users",
                SetNull,
            ))
            .take(),
        c.table(name("chat_assignments"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("chat_id")).big_integer().not_null())
            .col(ColumnDef::new(name("user_id")).big_integer().not_null())
            .col(ColumnDef::new(name("assigned_by_user_id")).big_integer().null())
            .col(
                ColumnDef::new(name("active_chat_id"))
                    .big_integer()
                    .null()
                    .unique_key(),
            )
            .col(c.timestamp(name("assigned_at")).not_null())
            .col(c.timestamp(name("unassigned_at")).null())
            .foreign_key(&mut foreign_key("chat_assignments", "chat_id", "chats", Cascade))
            .foreign_key(&mut foreign_key("chat_assignments", "user_id", "users", Cascade))
            .foreign_key(&mut foreign_key(
                "chat_assignments",
                "assigned_by_user_id",
                "users",
                SetNull,
            ))
            .take(),
        c.table(name("jobs"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("kind")).string_len(64).not_null())
            .col(c.json(name("payload")).not_null())
            .col(ColumnDef::new(name("status")).string_len(16).not_null())
            .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
            .col(ColumnDef::new(name("max_attempts")).integer().not_null())
            .col(c.timestamp(name("run_at")).not_null())
            .col(ColumnDef::new(name("locked_by")).string_len(64).null())
            .col(c.timestamp(name("locked_until")).null())
            .col(ColumnDef::new(name("last_error")).text().null())
            .col(
                ColumnDef::new(name("dedupe_key"))
                    .string_len(191)
                    .null()
                    .unique_key(),
            )
            .col(c.timestamp(name("created_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .take(),
        c.table(name("leases"))
            .col(
                ColumnDef::new(name("name"))
                    .string_len(191)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new(name("holder")).string_len(64).not_null())
            .col(ColumnDef::new(name("fencing_token")).big_integer().not_null())
            .col(c.timestamp(name("expires_at")).not_null())
            .col(c.timestamp(name("updated_at")).not_null())
            .take(),
        c.table(name("audit_log"))
            .col(c.id(name("id")))
            .col(ColumnDef::new(name("actor_user_id")).big_integer().null())
            .col(ColumnDef::new(name("action")).string_len(64).not_null())
            .col(ColumnDef::new(name("target_type")).string_len(32).null())
            .col(ColumnDef::new(name("target_id")).big_integer().null())
            .col(c.json(name("details")).not_null())
            .col(ColumnDef::new(name("ip")).string_len(64).null())
            .col(c.timestamp(name("created_at")).not_null())
            .foreign_key(&mut foreign_key("audit_log", "actor_user_id", "users", SetNull))
            .take(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index(
            "api_tokens",
            "ix_api_tokens_user",
            &["user_id", "revoked_at"],
            false,
        ),
        index(
            "accounts",
            "ix_accounts_status",
            &["account_type", "status"],
            false,
        ),
        index(
            "accounts",
            "ix_accounts_telegram_user",
            &["telegram_user_id"],
            false,
        ),
        // The predecessor made peer ids globally unique and lost the second account's messages.
        index("chats", "ux_chats_account_peer", &["account_id", "peer_id"], true),
        index("chats", "ix_chats_activity", &["last_message_at", "id"], false),
        index(
            "chats",
            "ix_chats_account_activity",
            &["account_id", "last_message_at"],
            false,
        ),
        index(
            "chats",
            "ix_chats_unread",
            &["unread_count", "last_message_at"],
            false,
        ),
        // NULL ids (queued replies) do not collide: every backend allows many NULLs in a unique index.
        index(
            "messages",
            "ux_messages_chat_telegram_id",
            &["chat_id", "telegram_message_id"],
            true,
        ),
        index(
            "messages",
            "ix_messages_chat_timeline",
            &["chat_id", "telegram_date", "id"],
            false,
        ),
        index("messages", "ix_messages_status", &["status", "direction"], false),
        index(
            "messages",
            "ix_messages_reply_to",
            &["reply_to_message_id"],
            false,
        ),
        index("media_files", "ix_media_files_message", &["message_id"], false),
        index(
            "chat_assignments",
            "ix_assignments_user_active",
            &["user_id", "active_chat_id"],
            false,
        ),
        index(
            "chat_assignments",
            "ix_assignments_chat_history",
            &["chat_id", "assigned_at"],
            false,
        ),
        index("jobs", "ix_jobs_due", &["status", "run_at"], false),
        index("audit_log", "ix_audit_log_time", &["created_at"], false),
        index(
            "audit_log",
            "ix_audit_log_action",
            &["action", "created_at"],
            false,
        ),
    ]
}
