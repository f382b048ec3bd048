//! Bot intake settings on accounts: how updates arrive (webhook or polling), where the webhook points, the
//! polling offset, and the existing bot backend updates are forwarded to.

use sea_orm_migration::prelude::*;

/// Adds `intake_mode`, `webhook_url`, `forward_url` and `polling_offset` to `accounts`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ColumnDef::new(Alias::new("intake_mode"))
                .string_len(16)
                .not_null()
                .default("none")
                .take(),
            ColumnDef::new(Alias::new("webhook_url"))
                .string_len(2048)
                .null()
                .take(),
            ColumnDef::new(Alias::new("forward_url"))
                .string_len(2048)
                .null()
                .take(),
            ColumnDef::new(Alias::new("polling_offset"))
                .big_integer()
                .null()
                .take(),
        ];
        // SQLite alters one column per statement.
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("accounts"))
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}
