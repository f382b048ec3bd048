//! Personal accounts: what each one collects, the admin's intent to run it, its pending phone login, why it
//! failed and when to retry, history import, removal that keeps the chats; and jobs pinned to the instance that holds an account's connection.

use sea_orm_migration::prelude::*;

use super::columns::Columns;

/// Adds the personal-account columns to `accounts` and `pinned_account_id` to `jobs`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        let flag = |name: &str, default: bool| {
            ColumnDef::new(Alias::new(name))
                .boolean()
                .not_null()
                .default(default)
                .take()
        };
        let account_columns = [
            flag("include_groups", false),
            flag("include_channels", false),
            flag("mark_read_in_telegram", true),
            flag("enabled", false),
            ColumnDef::new(Alias::new("pending_code_hash_sealed"))
                .text()
                .null()
                .take(),
            ColumnDef::new(Alias::new("pending_code_type"))
                .string_len(32)
                .null()
                .take(),
            ColumnDef::new(Alias::new("error_code"))
                .string_len(32)
                .null()
                .take(),
            c.timestamp(Alias::new("retry_at")).null().take(),
            c.timestamp(Alias::new("history_imported_at")).null().take(),
            c.timestamp(Alias::new("removed_at")).null().take(),
        ];
        // SQLite alters one column per statement.
        for mut column in account_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("accounts"))
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("jobs"))
                    .add_column(
                        ColumnDef::new(Alias::new("pinned_account_id"))
                            .big_integer()
                            .null()
                            .take(),
                    )
                    .take(),
            )
            .await
    }
}
