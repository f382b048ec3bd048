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

/// A new file's final place: this month's directory (created private) and a generated name with `extension`
/// (letters and digits only); returns the directory and the path relative to `media_dir`.
async fn final_place(media_dir: &Path, extension: &str) -> std::io::Result<(PathBuf, String)> {
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
    Ok((directory, format!("{relative_dir}/{name}")))
}

/// Bytes of an incoming file kept in memory to tell its type.
pub const HEAD_BYTES: usize = 64 * 1024;

/// A file being received (an operator's upload): written as it arrives to a private temporary file in the
/// media directory, hashed on the way, with its first [`HEAD_BYTES`] kept to tell its type, so that memory holds
/// a chunk, not the file. Dropped without [`IncomingFile::keep`], the temporary file is removed.
#[derive(Debug)]
pub struct IncomingFile {
    media_dir: PathBuf,
    temporary: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: sha2::Sha256,
    head: Vec<u8>,
    size: u64,
}

impl IncomingFile {
    /// Starts a file under `media_dir`.
    pub async fn create(media_dir: &Path) -> std::io::Result<Self> {
        let incoming = media_dir.join("incoming");
        let private = incoming.clone();
        tokio::task::spawn_blocking(move || create_private_dir(&private))
            .await
            .map_err(std::io::Error::other)??;
        let temporary = incoming.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&temporary).await?;
        Ok(Self {
            media_dir: media_dir.to_owned(),
            temporary,
            file: Some(file),
            hasher: sha2::Digest::new(),
            head: Vec::new(),
            size: 0,
        })
    }

    /// Appends `chunk`.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the file is closed"))?;
        file.write_all(chunk).await?;
        sha2::Digest::update(&mut self.hasher, chunk);
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// The first bytes received (at most [`HEAD_BYTES`]).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves the complete file to its final place with `extension`; returns its path relative to the media
    /// directory and its SHA-256 (lowercase hex).
    pub async fn keep(mut self, extension: &str) -> std::io::Result<(String, String)> {
        use tokio::io::AsyncWriteExt;
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        let (_, relative) = final_place(&self.media_dir, extension).await?;
        tokio::fs::rename(&self.temporary, self.media_dir.join(&relative)).await?;
        self.temporary = PathBuf::new();
        let hash = hex::encode(sha2::Digest::finalize(self.hasher.clone()));
        Ok((relative, hash))
    }
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        if !self.temporary.as_os_str().is_empty() {
            // Closing and unlinking a file is quick; a failure leaves a `.part` file that no row points at.
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// Removes a stored file; one that is already gone counts as removed.
pub async fn remove_file(media_dir: &Path, storage_path: &str) -> std::io::Result<()> {
    let Some(path) = resolve(media_dir, storage_path) else {
        return Err(std::io::Error::other(format!(
            "invalid storage path `{storage_path}`"
        )));
    };
    match tokio::fs::remove_file(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Writes `bytes` under `media_dir` via a temporary file and a rename, so a crash never leaves half a file
/// under the final name; returns the path relative to `media_dir`.
pub async fn store_file(media_dir: &Path, bytes: &[u8], extension: &str) -> std::io::Result<String> {
    let (directory, relative) = final_place(media_dir, extension).await?;
    let name = relative.rsplit('/').next().unwrap_or_default().to_owned();
    let temporary = directory.join(format!(".{name}.part"));
    write_private(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, directory.join(&name)).await?;
    Ok(relative)
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

    fn remove<'a>(&'a self, storage_path: &'a str) -> BoxFuture<'a, crm_core::CoreResult<()>> {
        Box::pin(async move {
            remove_file(&self.dir, storage_path)
                .await
                .map_err(|error| CoreError::unavailable_from("cannot remove a media file", error))
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
    async fn an_incoming_file_is_kept_whole_or_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("crm-incoming-{}", uuid::Uuid::new_v4().simple()));
        let mut kept = IncomingFile::create(&dir).await.unwrap();
        let big = vec![7_u8; HEAD_BYTES + 10];
        kept.write(b"abc").await.unwrap();
        kept.write(&big).await.unwrap();
        assert_eq!(kept.size(), 3 + big.len() as u64);
        assert_eq!(kept.head().len(), HEAD_BYTES);
        assert_eq!(&kept.head()[..4], b"abc\x07");
        let mut whole = b"abc".to_vec();
        whole.extend_from_slice(&big);
        let (path, hash) = kept.keep("bin").await.unwrap();
        assert_eq!(std::fs::read(resolve(&dir, &path).unwrap()).unwrap(), whole);
        assert_eq!(hash, crm_core::media::sha256_hex(&whole));

        let mut abandoned = IncomingFile::create(&dir).await.unwrap();
        abandoned.write(b"half a file").await.unwrap();
        drop(abandoned);
        assert_eq!(
            std::fs::read_dir(dir.join("incoming")).unwrap().count(),
            0,
            "an abandoned upload leaves no part file"
        );
        remove_file(&dir, &path).await.unwrap();
        remove_file(&dir, &path).await.expect("removing twice is fine");
        assert!(!resolve(&dir, &path).unwrap().exists());
        std::fs::remove_dir_all(dir).unwrap();
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
