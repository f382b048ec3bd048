//! `crm accounts …`: list personal and bot accounts and start, stop, restart or sync personal accounts from the
//! command line, against the database a running server uses. Commands change the admin's intent in the
//! database, which every instance's supervisor follows within seconds; with Redis configured they are also
//! announced at once.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use crm_bus::redis_bus::publish_once;
use crm_core::account::{Account, AccountType};
use crm_core::event::{AccountAction, Event};
use crm_core::ids::AccountId;
use crm_core::personal::connection_lease;
use crm_store::Store;
use crm_store::repo::{leases, personal};

use crate::app::open_store;
use crate::config::Settings;

/// `crm accounts …`.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List every account with its status and the instance connected to it.
    List {
        /// Settings (the database to read).
        #[command(flatten)]
        settings: Settings,
    },
    /// Start personal accounts: they are connected by one instance and stay connected.
    Start(Selection),
    /// Stop personal accounts: they are disconnected and stay stopped.
    Stop(Selection),
    /// Disconnect personal accounts and connect them again.
    Restart(Selection),
    /// Make every connected personal account catch up on missed updates now.
    Sync {
        /// Settings (the database, and Redis to reach the running instances).
        #[command(flatten)]
        settings: Settings,
    },
}

/// Which accounts a command is about.
#[derive(Debug, Args)]
pub struct Selection {
    /// The account id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<i64>,
    /// Every personal account.
    #[arg(long)]
    pub all: bool,
    /// Settings (the database, and Redis to reach the running instances).
    #[command(flatten)]
    pub settings: Settings,
}

/// How long a stop waits for the connected instance to let go.
const DISCONNECT_WAIT: Duration = Duration::from_secs(60);

/// Tells the running instances at once, through Redis when it is configured (they follow the database anyway).
struct Announcer {
    redis: Option<String>,
    origin: String,
}

impl Announcer {
    fn new(settings: &Settings) -> Self {
        Self {
            redis: settings.redis(),
            origin: format!("{}-cli", settings.instance_id()),
        }
    }

    async fn announce(&self, account_id: Option<i64>, action: AccountAction) -> anyhow::Result<()> {
        let Some(url) = &self.redis else {
            return Ok(());
        };
        publish_once(url, &self.origin, Event::AccountControl { account_id, action })
            .await
            .map_err(anyhow::Error::msg)
    }
}

async fn selected(store: &Store, selection: &Selection) -> anyhow::Result<Vec<Account>> {
    let everyone = personal::all_personal(store).await?;
    let chosen: Vec<_> = everyone
        .into_iter()
        .filter(|a| a.removed_at.is_none())
        .filter(|a| selection.all || Some(a.id.0) == selection.id)
        .collect();
    if chosen.is_empty() {
        match selection.id {
            Some(id) => bail!("there is no personal account {id}"),
            None => println!("there are no personal accounts"),
        }
    }
    Ok(chosen)
}

async fn start(store: &Store, account: &Account) -> anyhow::Result<bool> {
    if !account.has_session {
        println!(
            "account {}: not logged in; log in through the API first",
            account.id
        );
        return Ok(false);
    }
    personal::start(store, account).await?;
    println!("account {}: started", account.id);
    Ok(true)
}

/// Waits until the account's instance has let it go (its intent was already set to stopped).
async fn stopped(store: &Store, account_id: AccountId) -> anyhow::Result<()> {
    print!("account {account_id}: stopping…");
    if let Some(holder) = personal::wait_until_disconnected(store, account_id, DISCONNECT_WAIT).await? {
        bail!("account {account_id} is still connected by {holder}; is that instance stuck?");
    }
    println!(" stopped");
    Ok(())
}

/// Runs an accounts command.
pub async fn run(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::List { settings } => {
            let store = open_store(&settings).await?;
            list(&store).await
        }
        AccountsCommand::Start(selection) => {
            let store = open_store(&selection.settings).await?;
            let announcer = Announcer::new(&selection.settings);
            for account in selected(&store, &selection).await? {
                if start(&store, &account).await? {
                    announcer
                        .announce(Some(account.id.0), AccountAction::Start)
                        .await?;
                }
            }
            Ok(())
        }
        AccountsCommand::Stop(selection) => {
            let store = open_store(&selection.settings).await?;
            let announcer = Announcer::new(&selection.settings);
            let chosen = selected(&store, &selection).await?;
            for account in &chosen {
                personal::set_enabled(&store, account.id, false).await?;
                announcer
                    .announce(Some(account.id.0), AccountAction::Stop)
                    .await?;
            }
            for account in &chosen {
                stopped(&store, account.id).await?;
            }
            Ok(())
        }
        AccountsCommand::Restart(selection) => {
            let store = open_store(&selection.settings).await?;
            for account in selected(&store, &selection).await? {
                if !account.has_session {
                    println!(
                        "account {}: not logged in; log in through the API first",
                        account.id
                    );
                    continue;
                }
                personal::set_enabled(&store, account.id, false).await?;
                stopped(&store, account.id).await?;
                start(&store, &account).await?;
            }
            Ok(())
        }
        AccountsCommand::Sync { settings } => {
            let store = open_store(&settings).await?;
            let announcer = Announcer::new(&settings);
            if announcer.redis.is_none() {
                bail!(
                    "without Redis the running server cannot be reached; the server catches up on every \
                     reconnect, so use `crm accounts restart --all`, or POST /api/sync/"
                );
            }
            let connected = personal::all_personal(&store)
                .await?
                .into_iter()
                .filter(|a| a.enabled && a.removed_at.is_none())
                .count();
            announcer.announce(None, AccountAction::Sync).await?;
            println!("sync triggered for {connected} enabled personal account(s)");
            Ok(())
        }
    }
}

async fn list(store: &Store) -> anyhow::Result<()> {
    let accounts = crm_store::repo::accounts::list(store, 1, 10_000)
        .await
        .context("cannot list accounts")?;
    println!(
        "{:>5}  {:<8}  {:<24}  {:<17}  {:<7}  {:<20}  last error",
        "id", "type", "name", "status", "enabled", "connected by"
    );
    for account in accounts.items {
        let holder = if account.account_type == AccountType::Personal {
            leases::holder(store, &connection_lease(AccountId(account.id))).await?
        } else {
            None
        };
        println!(
            "{:>5}  {:<8}  {:<24}  {:<17}  {:<7}  {:<20}  {}",
            account.id,
            account.account_type,
            account.name.chars().take(24).collect::<String>(),
            account.status,
            if account.enabled { "yes" } else { "no" },
            holder.unwrap_or_else(|| "-".into()),
            account.last_error.unwrap_or_default()
        );
    }
    Ok(())
}
