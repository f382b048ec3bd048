//! Finding `SECRET_KEY`: from the configuration, or generated once into `DATA_DIR` for the embedded mode (and
//! for development), or a refusal to start a production server without one.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rand::RngCore;

/// File under `DATA_DIR` holding a generated key.
pub const KEY_FILE: &str = "secret_key";
/// Keys shorter than this are refused: everything secret derives from it.
pub const MIN_KEY_LEN: usize = 16;

/// The key to use. `configured` wins; otherwise in embedded or debug mode the key in `DATA_DIR/secret_key` is
/// read or created (mode 0600); otherwise starting is refused.
pub fn resolve(
    configured: Option<&str>,
    data_dir: &Path,
    embedded: bool,
    debug: bool,
) -> anyhow::Result<String> {
    if let Some(key) = configured.filter(|k| !k.is_empty()) {
        if key.chars().count() < MIN_KEY_LEN {
            bail!("SECRET_KEY is too short: use at least {MIN_KEY_LEN} characters (50 random ones are best)");
        }
        return Ok(key.to_owned());
    }
    if !embedded && !debug {
        bail!(
            "SECRET_KEY is not set. A server database is configured, so the key must be set explicitly \
             (every instance needs the same one): put SECRET_KEY=<50 random characters> in .env or the environment"
        );
    }
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let key =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = key.trim().to_owned();
        if key.len() >= MIN_KEY_LEN {
            tracing::info!(path = %path.display(), "using the generated SECRET_KEY");
            return Ok(key);
        }
        bail!(
            "{} is damaged (too short); restore it from a backup or set SECRET_KEY",
            path.display()
        );
    }
    crm_store::files::create_private_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "SECRET_KEY was not set: generated one into this file (mode 0600). Back it up with the database: \
         stored secrets cannot be opened without it"
    );
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_key_wins_and_must_be_long_enough() {
        let dir = std::env::temp_dir();
        assert_eq!(
            resolve(Some("0123456789abcdef!"), &dir, false, false).unwrap(),
            "0123456789abcdef!"
        );
        assert!(resolve(Some("short"), &dir, true, true).is_err());
    }

    #[test]
    fn embedded_mode_generates_a_private_key_once() {
        let dir = std::env::temp_dir().join(format!("crm-key-{}", rand::thread_rng().next_u64()));
        let first = resolve(None, &dir, true, false).unwrap();
        let second = resolve(None, &dir, true, false).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_production_server_database_without_a_key_refuses_to_start() {
        let error = resolve(None, Path::new("/nonexistent"), false, false).unwrap_err();
        assert!(error.to_string().contains("SECRET_KEY is not set"));
    }
}
