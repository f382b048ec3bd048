//! The spine's schema: events numbered in commit order (`events.seq` and the `event_sequence` counter), the
//! chat's newest message and holder kept on the chat row (so intake updates a chat with one statement keyed by
//! its id, and events and lists need no second read), an index for linking replies, and an ordering key for the
//! jobs of one chat.

use sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::prelude::*;

use super::columns::Columns;

/// Adds the columns, tables and indexes, and fills them for existing rows.
#[derive(DeriveMigrationName)]
pub struct Migration;

fn name(text: &str) -> Alias {
    Alias::new(text)
}

fn add_column(table: &str, column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(name(table)).add_column(column).take()
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
        let backend = manager.get_database_backend();
        let c = Columns(backend);
        let columns = [
            add_column("events", ColumnDef::new(name("seq")).big_integer().null().take()),
            add_column(
                "chats",
                ColumnDef::new(name("last_message_id"))
                    .big_integer()
                    .null()
                    .take(),
            ),
            add_column(
                "chats",
                ColumnDef::new(name("last_message_preview")).text().null().take(),
            ),
            add_column(
                "chats",
                ColumnDef::new(name("last_message_outgoing"))
                    .boolean()
                    .not_null()
                    .default(false)
                    .take(),
            ),
            add_column(
                "chats",
                ColumnDef::new(name("assigned_user_id"))
                    .big_integer()
                    .null()
                    .take(),
            ),
            add_column(
                "chats",
                ColumnDef::new(name("has_orphan_replies"))
                    .boolean()
                    .not_null()
                    .default(false)
                    .take(),
            ),
            add_column(
                "jobs",
                ColumnDef::new(name("order_key")).string_len(64).null().take(),
            ),
        ];
        // SQLite adds one column per statement; the others take them one by one just as well.
        for statement in columns {
            manager.alter_table(statement).await?;
        }
        manager
            .create_table(
                c.table(name("event_sequence"))
                    .col(ColumnDef::new(name("id")).integer().not_null().primary_key())
                    .col(ColumnDef::new(name("last_seq")).big_integer().not_null())
                    .take(),
            )
            .await?;
        let db = manager.get_connection();
        // Events logged before numbering existed keep their ids as numbers, so a client resuming across the
        // upgrade misses nothing.
        db.execute_unprepared("UPDATE events SET seq = id").await?;
        db.execute_unprepared(
            "INSERT INTO event_sequence (id, last_seq) SELECT 1, COALESCE(MAX(id), 0) FROM events",
        )
        .await?;
        backfill_chats(db, backend).await?;
        for statement in [
            index("events", "ux_events_seq", &["seq"], true),
            index("chats", "ix_chats_assigned", &["assigned_user_id"], false),
            index(
                "messages",
                "ix_messages_reply_parent",
                &["chat_id", "reply_to_telegram_id"],
                false,
            ),
            index("jobs", "ix_jobs_order", &["order_key", "id"], false),
        ] {
            manager.create_index(statement).await?;
        }
        Ok(())
    }
}

/// Fills the new chat columns from the messages and assignments already stored.
async fn backfill_chats<C: ConnectionTrait>(db: &C, backend: DatabaseBackend) -> Result<(), DbErr> {
    let substring = match backend {
        DatabaseBackend::MySql => "SUBSTRING",
        _ => "SUBSTR",
    };
    db.execute_unprepared(
        "UPDATE chats SET last_message_id = (SELECT m.id FROM messages m WHERE m.chat_id = chats.id \
         ORDER BY m.telegram_date DESC, m.id DESC LIMIT 1)",
    )
    .await?;
    db.execute_unprepared(&format!(
        "UPDATE chats SET \
           last_message_preview = (SELECT {substring}(COALESCE(m.text, m.caption, '[Медиа]'), 1, 100) \
             FROM messages m WHERE m.id = chats.last_message_id), \
           last_message_outgoing = COALESCE((SELECT m.direction = 'out' FROM messages m \
             WHERE m.id = chats.last_message_id), {false_value}), \
           last_message_at = COALESCE((SELECT m.telegram_date FROM messages m \
             WHERE m.id = chats.last_message_id), last_message_at) \
         WHERE last_message_id IS NOT NULL",
        false_value = match backend {
            DatabaseBackend::Postgres => "FALSE",
            _ => "0",
        }
    ))
    .await?;
    db.execute_unprepared(
        "UPDATE chats SET assigned_user_id = (SELECT a.user_id FROM chat_assignments a \
         WHERE a.active_chat_id = chats.id)",
    )
    .await?;
    Ok(())
}
