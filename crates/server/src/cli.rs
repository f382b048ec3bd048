//! The `crm` command line: `serve`, `migrate`, `create-admin`, `accounts …`, `config print-default`.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand};

use crate::app::{Application, open_store, stop_signal};
use crate::bootstrap;
use crate::config::Settings;

/// omnichannel-crm: a shared inbox for Telegram bots and personal accounts.
///
/// Settings come from flags, environment variables and a `.env` file in the working directory (see
/// `crm config print-default`). With nothing configured, `crm serve` runs on an embedded SQLite file in ./data.
#[derive(Debug, Parser)]
#[command(name = "crm", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API, background jobs; applies pending migrations first.
    Serve {
        /// Settings.
        #[command(flatten)]
        settings: Settings,
    },
    /// Apply pending database migrations and exit, showing progress.
    Migrate {
        /// Settings.
        #[command(flatten)]
        settings: Settings,
    },
    /// Create an admin user (asks for the password on a terminal; for scripts use CRM_ADMIN_PASSWORD or
    /// --password-stdin).
    #[command(alias = "createsuperuser")]
    CreateAdmin {
        /// Login name of the new admin.
        #[arg(long, env = "CRM_ADMIN_USERNAME", default_value = "admin")]
        username: String,
        /// Name shown to colleagues (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Never prompt; fail if no password is given.
        #[arg(long)]
        no_input: bool,
        /// If the user exists, reset its password and make it an active admin instead of failing.
        #[arg(long)]
        update: bool,
        /// Settings (the password may come from CRM_ADMIN_PASSWORD).
        #[command(flatten)]
        settings: Settings,
    },
    /// List personal and bot accounts; start, stop, restart or sync personal accounts (alongside a running
    /// server, through its database).
    Accounts {
        /// What to do.
        #[command(subcommand)]
        command: crate::accounts_cli::AccountsCommand,
    },
    /// Inspect the configuration.
    Config {
        /// What to show.
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `crm config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting with its default, in `.env` format.
    PrintDefault,
}

/// Renders every setting of `crm serve` as a commented `.env` file.
pub fn default_env_file() -> String {
    let command = Cli::command();
    let mut out =
        String::from("# omnichannel-crm settings with their defaults (environment variables or .env)\n");
    let Some(serve) = command.find_subcommand("serve") else {
        return out;
    };
    for argument in serve.get_arguments() {
        let Some(variable) = argument.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        out.push('\n');
        if let Some(help) = argument.get_long_help().or_else(|| argument.get_help()) {
            for line in help.to_string().lines() {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let defaults: Vec<String> = argument
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if defaults.is_empty() {
            out.push_str(&format!("# {variable}=\n"));
        } else {
            out.push_str(&format!("{variable}={}\n", defaults.join(",")));
        }
    }
    out
}

fn read_password(password_stdin: bool, no_input: bool, configured: Option<String>) -> anyhow::Result<String> {
    if let Some(password) = configured.filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if no_input || !std::io::stdin().is_terminal() {
        bail!("no password given: set CRM_ADMIN_PASSWORD, use --password-stdin, or run on a terminal");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { settings } => {
            crate::logging::init(&settings.log_filter(), &settings.log_format);
            let app = Application::build(settings).await?;
            app.run(stop_signal()).await
        }
        Command::Migrate { settings } => {
            crate::logging::init(&settings.log_filter(), &settings.log_format);
            let store = open_store(&settings).await?;
            let pending = store.pending_migrations().await?;
            println!(
                "database schema is up to date ({} migrations pending)",
                pending.len()
            );
            Ok(())
        }
        Command::CreateAdmin {
            username,
            display_name,
            password_stdin,
            no_input,
            update,
            settings,
        } => {
            crate::logging::init(&settings.log_filter(), &settings.log_format);
            let password = read_password(password_stdin, no_input, settings.crm_admin_password.clone())?;
            let store = open_store(&settings).await?;
            let display_name = display_name.unwrap_or_else(|| username.clone());
            let id = bootstrap::create_admin(&store, &username, &password, &display_name, update).await?;
            println!("admin `{username}` is ready (id {id})");
            store.close().await?;
            Ok(())
        }
        Command::Accounts { command } => crate::accounts_cli::run(command).await,
        Command::Config {
            command: ConfigCommand::PrintDefault,
        } => {
            print!("{}", default_env_file());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn print_default_lists_every_setting_with_its_default() {
        let text = default_env_file();
        for line in [
            "LISTEN_ADDR=127.0.0.1:8000",
            "DATA_DIR=./data",
            "DEBUG=false",
            "DB_PORT=3306",
            "# SECRET_KEY=",
            "# DATABASE_URL=",
            "# DJANGO_LOG_LEVEL=",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
    }

    #[test]
    fn createsuperuser_is_an_alias_of_create_admin() {
        let cli =
            Cli::try_parse_from(["crm", "createsuperuser", "--username", "boss", "--no-input"]).unwrap();
        assert!(matches!(cli.command, Command::CreateAdmin { ref username, .. } if username == "boss"));
    }

    #[test]
    fn debug_must_be_a_real_boolean() {
        assert!(
            Cli::try_parse_from(["crm", "serve", "--debug", "False"]).is_ok_and(|cli| matches!(
            cli.command, Command::Serve { ref settings } if !settings.debug))
        );
        assert!(Cli::try_parse_from(["crm", "serve", "--debug", "maybe"]).is_err());
    }
}
