//! The media directory on disk: files are written under generated names (`YYYY/MM/<uuid>.<ext>`, never a name
//! from user input) and read back only through paths recorded in `media_files`. Directories are created 0700 and
//! files 0600: customers' files are readable by the server's user alone.

use std::path::{Component, Path, PathBuf};

use chrono::{Datelike, Utc};
use crm_core::CoreError;
use crm_core::ports::{BoxFuture, MediaStore};

/// Creates `dir` and its missing parents, readable by this user alone (0700); an existing directory is left as
/// it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty and readable by this user alone (0600) unless it exists (the SQLite file, before SQLite
/// would create it with the umask's 0644; its `-wal` and `-shm` files take the same mode).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Writes `bytes` to a new file at `path`, readable by this user alone (0600).
async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// Writes `bytes` under `media_dir` via a temporary file and a rename, so a crash never leaves half a file
/// under the final name; returns the path relative to `media_dir`.
pub async fn store_file(media_dir: &Path, bytes: &[u8], extension: &str) -> std::io::Result<String> {
    let now = Utc::now();
    let relative_dir = format!("{:04}/{:02}", now.year(), now.month());
    let directory = media_dir.join(&relative_dir);
    let private = directory.clone();
    tokio::task::spawn_blocking(move || create_private_dir(&private))
        .await
        .map_err(std::io::Error::other)??;
    let extension: String = extension
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let name = format!("{}.{extension}", uuid::Uuid::new_v4().simple());
    let temporary = directory.join(format!(".{name}.part"));
    write_private(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, directory.join(&name)).await?;
    Ok(format!("{relative_dir}/{name}"))
}

/// The absolute path of a recorded `storage_path`, refusing anything that could leave `media_dir`.
pub fn resolve(media_dir: &Path, storage_path: &str) -> Option<PathBuf> {
    let relative = Path::new(storage_path);
    let safe = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    (safe && !storage_path.is_empty()).then(|| media_dir.join(relative))
}

/// The media directory as core's [`MediaStore`] port.
#[derive(Debug, Clone)]
pub struct MediaDir {
    dir: PathBuf,
}

impl MediaDir {
    /// Files under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl MediaStore for MediaDir {
    fn read<'a>(&'a self, storage_path: &'a str) -> BoxFuture<'a, crm_core::CoreResult<Vec<u8>>> {
        Box::pin(async move {
            let path = resolve(&self.dir, storage_path)
                .ok_or_else(|| CoreError::internal(format!("invalid storage path `{storage_path}`")))?;
            tokio::fs::read(&path)
                .await
                .map_err(|error| CoreError::internal_from("cannot read a stored file", error))
        })
    }

    fn write<'a>(
        &'a self,
        bytes: &'a [u8],
        extension: &'a str,
    ) -> BoxFuture<'a, crm_core::CoreResult<String>> {
        Box::pin(async move {
            store_file(&self.dir, bytes, extension)
                .await
                .map_err(|error| CoreError::unavailable_from("cannot write the media file", error))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_resolve() {
        let base = Path::new("/srv/media");
        assert_eq!(
            resolve(base, "2026/11/a.jpg"),
            Some(PathBuf::from("/srv/media/2026/11/a.jpg"))
        );
        assert_eq!(resolve(base, "../secret_key"), None);
        assert_eq!(resolve(base, "/etc/passwd"), None);
        assert_eq!(resolve(base, "2026/../../x"), None);
        assert_eq!(resolve(base, ""), None);
    }

    #[tokio::test]
    async fn stored_files_get_generated_names() {
        let dir = std::env::temp_dir().join(format!("crm-files-{}", uuid::Uuid::new_v4().simple()));
        let path = store_file(&dir, b"bytes", "j/p../g").await.unwrap();
        assert!(path.ends_with(".jpg"), "{path}");
        let stored = resolve(&dir, &path).unwrap();
        assert_eq!(std::fs::read(&stored).unwrap(), b"bytes");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&stored), 0o600, "a stored file is private");
            assert_eq!(mode(stored.parent().unwrap()), 0o700, "so is its directory");
            assert_eq!(mode(&dir), 0o700);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
