//! Messages of a chat: their direction, kind and delivery status.

use crate::string_enum;

string_enum! {
    /// Who wrote the message, seen from the inbox.
    Direction {
        /// From the customer (or another group member) to us.
        Inbound => "in",
        /// From us (an operator, or the account owner on another device) to the customer.
        Outbound => "out",
    }
}

string_enum! {
    /// What the message carries.
    MessageType {
        /// Plain text.
        Text => "text",
        /// A photo (the largest size is kept).
        Photo => "photo",
        /// A video.
        Video => "video",
        /// A GIF-like animation.
        Animation => "animation",
        /// A file.
        Document => "document",
        /// A music file.
        Audio => "audio",
        /// A voice note.
        Voice => "voice",
        /// A round video note.
        VideoNote => "video_note",
        /// A sticker.
        Sticker => "sticker",
        /// A point on the map.
        Location => "location",
        /// A named place.
        Venue => "venue",
        /// A shared contact.
        Contact => "contact",
        /// A poll.
        Poll => "poll",
        /// A dice roll.
        Dice => "dice",
        /// A service message (pinned, joined, ...).
        Service => "service",
        /// Anything newer than this list.
        Other => "other",
    }
}

string_enum! {
    /// Delivery state of a message.
    MessageStatus {
        /// Inbound, stored.
        Received => "received",
        /// Outbound, waiting in the outbox.
        Queued => "queued",
        /// Outbound, accepted by Telegram.
        Sent => "sent",
        /// Outbound, read by the customer.
        Read => "read",
        /// Outbound, given up on; `metadata.error` says why and it can be retried.
        Failed => "failed",
    }
}
