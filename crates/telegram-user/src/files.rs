//! Files of received messages: where a photo or document is stored at Telegram (for grammers' download
//! iterator) and the refusal of files over the size limit.

use crm_core::personal::UserError;
use grammers_client::media::Downloadable;
use grammers_tl_types as tl;

use crate::mapping;

/// A file of a message, ready to download.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    location: tl::enums::InputFileLocation,
    size: Option<i64>,
    dc_id: i32,
    /// Original name, if any.
    pub file_name: Option<String>,
    /// MIME type Telegram reports.
    pub mime_type: Option<String>,
}

impl RemoteFile {
    /// Refuses the file if Telegram says it is larger than `max_bytes`.
    pub fn check_size(&self, max_bytes: u64) -> Result<(), UserError> {
        match self.size.and_then(|size| u64::try_from(size).ok()) {
            Some(size) if size > max_bytes => Err(too_large(size, max_bytes)),
            _ => Ok(()),
        }
    }
}

impl Downloadable for RemoteFile {
    fn to_raw_input_location(&self) -> Option<tl::enums::InputFileLocation> {
        Some(self.location.clone())
    }

    fn size(&self) -> Option<usize> {
        self.size.and_then(|size| usize::try_from(size).ok())
    }

    fn dc_id(&self) -> Option<i32> {
        Some(self.dc_id)
    }
}

/// Where the file of a message's media is, if it has one.
pub fn remote_file(media: &tl::enums::MessageMedia) -> Option<RemoteFile> {
    match media {
        tl::enums::MessageMedia::Photo(tl::types::MessageMediaPhoto {
            photo: Some(tl::enums::Photo::Photo(photo)),
            ..
        }) => {
            let (thumb_size, size) = mapping::largest_photo_size(&photo.sizes)?;
            Some(RemoteFile {
                location: tl::types::InputPhotoFileLocation {
                    id: photo.id,
                    access_hash: photo.access_hash,
                    file_reference: photo.file_reference.clone(),
                    thumb_size,
                }
                .into(),
                size,
                dc_id: photo.dc_id,
                file_name: None,
                mime_type: Some("image/jpeg".to_owned()),
            })
        }
        tl::enums::MessageMedia::Document(tl::types::MessageMediaDocument {
            document: Some(tl::enums::Document::Document(document)),
            ..
        }) => Some(RemoteFile {
            location: tl::types::InputDocumentFileLocation {
                id: document.id,
                access_hash: document.access_hash,
                file_reference: document.file_reference.clone(),
                thumb_size: String::new(),
            }
            .into(),
            size: Some(document.size),
            dc_id: document.dc_id,
            file_name: mapping::document_file_name(document),
            mime_type: (!document.mime_type.is_empty()).then(|| document.mime_type.clone()),
        }),
        _ => None,
    }
}

/// The refusal of a file over the size limit.
pub fn too_large(size: u64, max_bytes: u64) -> UserError {
    UserError::PeerUnavailable(format!(
        "the file is {size} bytes, more than the {max_bytes} bytes allowed"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn files_are_located_with_their_size() {
        let media: tl::enums::MessageMedia = tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(
                tl::types::Document {
                    id: 5,
                    access_hash: 6,
                    file_reference: vec![7],
                    date: 1,
                    mime_type: "application/pdf".into(),
                    size: 2048,
                    thumbs: None,
                    video_thumbs: None,
                    dc_id: 4,
                    attributes: vec![
                        tl::types::DocumentAttributeFilename {
                            file_name: "a.pdf".into(),
                        }
                        .into(),
                    ],
                }
                .into(),
            ),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }
        .into();
        let file = remote_file(&media).unwrap();
        assert_eq!(Downloadable::size(&file), Some(2048));
        assert_eq!(Downloadable::dc_id(&file), Some(4));
        assert_eq!(file.file_name.as_deref(), Some("a.pdf"));
        assert!(file.check_size(2048).is_ok());
        assert!(matches!(
            file.check_size(2047),
            Err(UserError::PeerUnavailable(message)) if message.contains("2048")
        ));
        assert!(remote_file(&tl::enums::MessageMedia::Empty).is_none());
    }
}
