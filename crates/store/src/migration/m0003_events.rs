//! The event log: every change pushed to browsers, numbered, kept for a while so a client that lost its
//! connection can replay what it missed.

use sea_orm_migration::prelude::*;

use super::columns::Columns;

/// Creates `events`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        manager
            .create_table(
                c.table(Alias::new("events"))
                    .col(c.id(Alias::new("id")))
                    .col(ColumnDef::new(Alias::new("kind")).string_len(32).not_null())
                    .col(ColumnDef::new(Alias::new("chat_id")).big_integer().null())
                    .col(ColumnDef::new(Alias::new("user_id")).big_integer().null())
                    .col(c.json(Alias::new("payload")).not_null())
                    .col(c.timestamp(Alias::new("created_at")).not_null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_time")
                    .table(Alias::new("events"))
                    .col(Alias::new("created_at"))
                    .if_not_exists()
                    .take(),
            )
            .await
    }
}
