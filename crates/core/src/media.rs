//! Files: the stored-file record, what their bytes say they are (never the declared type or the extension),
//! which kinds may be uploaded, which may be shown inline, and safe display names.

use chrono::{DateTime, Utc};

use crate::ids::{MediaFileId, MessageId, UserId};
use crate::string_enum;

string_enum! {
    /// Where a file stands.
    MediaStatus {
        /// Waiting for its download.
        Pending => "pending",
        /// On disk.
        Stored => "stored",
        /// Over the automatic download limit; can be fetched another way.
        TooLarge => "too_large",
        /// Could not be downloaded.
        Failed => "failed",
    }
}

string_enum! {
    /// How a file came to us.
    MediaOrigin {
        /// Received with a message, downloaded from Telegram.
        Download => "download",
        /// Uploaded by an operator to send.
        Upload => "upload",
    }
}

/// A stored (or to-be-downloaded) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    /// Id.
    pub id: MediaFileId,
    /// The message it belongs to (an upload has none until it is sent).
    pub message_id: Option<MessageId>,
    /// The user who uploaded it.
    pub uploaded_by_user_id: Option<UserId>,
    /// Download or upload.
    pub origin: MediaOrigin,
    /// Where it stands.
    pub status: MediaStatus,
    /// Path under the media directory; generated, never from user input.
    pub storage_path: Option<String>,
    /// Original file name, made safe.
    pub file_name: Option<String>,
    /// Content type sniffed from the bytes (Telegram's before the download).
    pub content_type: Option<String>,
    /// Size in bytes.
    pub file_size: Option<i64>,
    /// SHA-256 of the content, hex.
    pub sha256: Option<String>,
    /// Telegram's file id (to download or re-send).
    pub telegram_file_id: Option<String>,
    /// Telegram's stable unique file id.
    pub telegram_file_unique_id: Option<String>,
    /// Why the download failed.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A file received with a message, to record (and download unless it is too large).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDownload {
    /// The message.
    pub message_id: MessageId,
    /// Pending, or too large to download automatically.
    pub status: MediaStatus,
    /// Original name, made safe.
    pub file_name: Option<String>,
    /// Telegram's MIME type.
    pub content_type: Option<String>,
    /// Telegram's size.
    pub file_size: Option<i64>,
    /// Telegram's file id.
    pub telegram_file_id: String,
    /// Telegram's unique file id.
    pub telegram_file_unique_id: Option<String>,
    /// When it arrived.
    pub created_at: DateTime<Utc>,
}

/// A broad class of file, decided from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Raster images.
    Image,
    /// Video.
    Video,
    /// Audio and voice.
    Audio,
    /// PDF and office documents.
    Document,
    /// Zip, rar, 7z, gzip and tar archives.
    Archive,
    /// UTF-8 text without control bytes.
    Text,
    /// Anything else (executables, unknown formats).
    Other,
}

/// The type of a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// MIME type.
    pub content_type: String,
    /// Extension for stored files, without the dot.
    pub extension: String,
    /// Its class.
    pub category: Category,
}

fn category_of(mime: &str) -> Category {
    const DOCUMENTS: &[&str] = &[
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/rtf",
    ];
    const ARCHIVES: &[&str] = &[
        "application/zip",
        "application/vnd.rar",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-tar",
    ];
    match mime {
        "image/svg+xml" => Category::Other,
        m if m.starts_with("image/") => Category::Image,
        m if m.starts_with("video/") => Category::Video,
        m if m.starts_with("audio/") => Category::Audio,
        m if DOCUMENTS.contains(&m) => Category::Document,
        m if ARCHIVES.contains(&m) => Category::Archive,
        _ => Category::Other,
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    // A cut in the middle of a multi-byte character at the sample's end is fine.
    let valid = match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && sample.len() - error.valid_up_to() < 4,
    };
    valid
        && !sample
            .iter()
            .any(|&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)))
}

/// Decides what `bytes` are. Text is recognised last, so a format with a signature always wins.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    if let Some(kind) = infer::get(bytes) {
        return Sniffed {
            content_type: kind.mime_type().to_owned(),
            extension: kind.extension().to_owned(),
            category: category_of(kind.mime_type()),
        };
    }
    if !bytes.is_empty() && looks_like_text(bytes) {
        return Sniffed {
            content_type: "text/plain; charset=utf-8".into(),
            extension: "txt".into(),
            category: Category::Text,
        };
    }
    Sniffed {
        content_type: "application/octet-stream".into(),
        extension: "bin".into(),
        category: Category::Other,
    }
}

/// Whether operators may upload files of this class.
pub fn upload_allowed(category: Category) -> bool {
    !matches!(category, Category::Other)
}

/// Whether a browser may show the file inline; everything else is served as an attachment.
pub fn inline_viewable(category: Category) -> bool {
    matches!(category, Category::Image | Category::Video | Category::Audio)
}

/// Invisible characters that reorder or hide text (bidirectional controls, zero-width marks): in a file name they
/// make `invoice\u{202E}fdp.exe` look like `invoiceexe.pdf`.
fn is_invisible_formatting(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A file name safe to show and to put in `Content-Disposition`: the last path component, without control
/// characters, invisible formatting or quotes, at most 200 characters; `fallback` when nothing is left.
pub fn display_file_name(name: &str, fallback: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !is_invisible_formatting(*c)
                && !matches!(c, '"' | '\'' | '<' | '>' | ';' | '%')
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(sniff(&png).content_type, "image/png");
        assert_eq!(sniff(&png).category, Category::Image);
        assert_eq!(sniff(b"%PDF-1.7\n...").category, Category::Document);
        assert_eq!(sniff("hello, мир\n".as_bytes()).category, Category::Text);
        assert_eq!(
            sniff(b"MZ\x90\x00\x03\x00\x00\x00").category,
            Category::Other,
            "executables are not allowed"
        );
        assert_eq!(sniff(&[0, 1, 2, 3, 0xff]).category, Category::Other);
        let html_claiming_to_be_png = b"<html><script>alert(1)</script></html>";
        assert_eq!(sniff(html_claiming_to_be_png).content_type, "text/html");
        assert_eq!(
            sniff(html_claiming_to_be_png).category,
            Category::Other,
            "HTML is never accepted as a file"
        );
        assert!(!upload_allowed(Category::Other));
        assert!(upload_allowed(Category::Archive));
        assert!(!inline_viewable(Category::Text));
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(display_file_name("../../etc/passwd", "file"), "passwd");
        assert_eq!(
            display_file_name("C:\\Users\\x\\report \"final\".pdf", "file"),
            "report final.pdf"
        );
        assert_eq!(display_file_name(".htaccess", "file"), "htaccess");
        assert_eq!(display_file_name("\u{0}\u{1}", "file"), "file");
        assert_eq!(display_file_name(&"a".repeat(500), "file").len(), 200);
        assert_eq!(
            display_file_name("invoice\u{202E}fdp.exe", "file"),
            "invoicefdp.exe",
            "a right-to-left override cannot disguise the extension"
        );
        assert_eq!(
            display_file_name("a\u{200B}b\u{2066}c\u{FEFF}.txt", "file"),
            "abc.txt"
        );
    }
}
