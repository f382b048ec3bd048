//! Users of the inbox: the user record, their roles and the rules for usernames, passwords and chat limits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::{CoreError, CoreResult};

/// Default for how many chats one operator may hold at once (the predecessor's default).
pub const DEFAULT_MAX_CHATS: i32 = 50;
/// Upper bound for `max_chats`, to catch typos such as 50000.
pub const MAX_CHATS_LIMIT: i32 = 10_000;
/// Minimum password length for new and reset passwords.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Maximum password length (argon2 accepts more, but nobody types more).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages accounts, operators and every chat.
    Admin,
    /// Answers the chats assigned to them.
    Operator,
}

impl Role {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> CoreResult<Self> {
        match value {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            other => Err(CoreError::invalid(format!(
                "unknown role `{other}`: use `admin` or `operator`"
            ))),
        }
    }
}

impl crate::StringEnum for Role {
    const ALL: &'static [Self] = &[Role::Admin, Role::Operator];

    fn as_str(self) -> &'static str {
        Role::as_str(self)
    }

    fn parse(value: &str) -> CoreResult<Self> {
        Role::parse(value)
    }
}

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name (case-sensitive).
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// Inactive users cannot log in and hold no tokens.
    pub is_active: bool,
    /// How many chats the user may hold at once.
    pub max_chats: i32,
    /// Name shown to colleagues.
    pub display_name: String,
    /// UI language tag.
    pub language: String,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Set when the user was removed.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The name shown on messages the user sends: the display name, else the login name.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() {
            &self.username
        } else {
            &self.display_name
        }
    }

    /// Whose view the user's reads take.
    pub fn viewer(&self) -> crate::chat::Viewer {
        match self.role {
            Role::Admin => crate::chat::Viewer::Admin,
            Role::Operator => crate::chat::Viewer::Operator(self.id),
        }
    }
}

/// The stored form of a new username, or why it is refused: 1 to 150 ASCII letters, digits and `@ . + - _`
/// (Django's rule without its non-ASCII letters, so that `аdmin` with a Cyrillic `а` cannot pose as `admin`),
/// lowercased (so that `Admin` cannot stand beside `admin`). Names in any script belong in `display_name`.
pub fn canonical_username(username: &str) -> CoreResult<String> {
    let length = username.chars().count();
    if length == 0 || length > 150 {
        return Err(CoreError::invalid("username must be 1 to 150 characters long"));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(CoreError::invalid(
            "username may contain only Latin letters, digits and @ . + - _ (put names in any script in display_name)",
        ));
    }
    Ok(username.to_ascii_lowercase())
}

/// Whether `username` could name a user at all (Django's wider rule, which users created before the ASCII rule
/// may follow): a login with anything else, such as trailing spaces, is refused without a lookup.
pub fn could_be_username(username: &str) -> bool {
    let length = username.chars().count();
    (1..=150).contains(&length)
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
}

/// Passwords too common to accept, one per line, lowercase.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Checks a new password: its length, not one of the passwords every attacker tries first, at least three
/// different characters, and not the username with digits or signs added.
pub fn validate_password(password: &str, username: &str) -> CoreResult<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(CoreError::invalid(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters long"
        )));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(CoreError::invalid(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters long"
        )));
    }
    let folded = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == folded) {
        return Err(CoreError::invalid_as(
            "password_too_common",
            "password is one of the most common passwords; choose another",
        ));
    }
    let mut distinct: Vec<char> = folded.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 3 {
        return Err(CoreError::invalid_as(
            "password_too_simple",
            "password must use at least three different characters",
        ));
    }
    // The username with digits and signs around it (`anna2024!`), as Django's similarity rule would catch.
    let letters = |text: &str| text.chars().filter(|c| c.is_alphabetic()).collect::<String>();
    let name = letters(&username.to_lowercase());
    if !name.is_empty() && letters(&folded) == name {
        return Err(CoreError::invalid_as(
            "password_like_username",
            "password must not contain the username",
        ));
    }
    Ok(())
}

/// Checks an operator's chat limit.
pub fn validate_max_chats(max_chats: i32) -> CoreResult<()> {
    if !(0..=MAX_CHATS_LIMIT).contains(&max_chats) {
        return Err(CoreError::invalid(format!(
            "max_chats must be between 0 and {MAX_CHATS_LIMIT}"
        )));
    }
    Ok(())
}

/// Checks a display name: at most 150 characters, no control characters.
pub fn validate_display_name(name: &str) -> CoreResult<()> {
    if name.chars().count() > 150 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "display_name must be at most 150 printable characters",
        ));
    }
    Ok(())
}

/// Checks a UI language tag such as `ru` or `en-GB`.
pub fn validate_language(language: &str) -> CoreResult<()> {
    let ok = (2..=16).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && language.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "language must be a language tag such as `ru` or `en`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_ascii_and_lowercased() {
        assert_eq!(
            canonical_username("Anna.K+support@example").unwrap(),
            "anna.k+support@example"
        );
        assert_eq!(canonical_username("ADMIN").unwrap(), "admin");
        assert!(
            canonical_username("\u{430}dmin").is_err(),
            "a Cyrillic а posing as a Latin a"
        );
        assert!(canonical_username("Оператор_1").is_err());
        assert!(canonical_username("").is_err());
        assert!(canonical_username("user ").is_err());
        assert!(canonical_username("has space").is_err());
        assert!(canonical_username("<script>").is_err());
        assert!(canonical_username(&"a".repeat(151)).is_err());
        assert!(could_be_username("Оператор_1"));
        assert!(!could_be_username("user "));
    }

    #[test]
    fn weak_passwords_are_refused_with_their_reason() {
        let code = |password: &str| match validate_password(password, "anna") {
            Ok(()) => "ok",
            Err(CoreError::Invalid { code, .. }) => code,
            Err(_) => "other",
        };
        assert_eq!(code("password"), "password_too_common");
        assert_eq!(code("PassWord"), "password_too_common");
        assert_eq!(code("12345678"), "password_too_common");
        assert_eq!(code("qwertyuiop"), "password_too_common");
        assert_eq!(code("aaaaaaaaaa"), "password_too_simple");
        assert_eq!(code("anna2024!"), "password_like_username");
        assert_eq!(code("short"), "invalid_field");
        assert_eq!(code("violet-harbour-42"), "ok");
        assert_eq!(code("anna-password"), "ok");
    }

    #[test]
    fn passwords_and_limits_are_bounded() {
        assert!(validate_password("short", "x").is_err());
        assert!(validate_password("long enough", "x").is_ok());
        assert!(validate_max_chats(-1).is_err());
        assert!(validate_max_chats(0).is_ok());
        assert!(validate_max_chats(MAX_CHATS_LIMIT + 1).is_err());
        assert!(validate_language("en-GB").is_ok());
        assert!(validate_language("e").is_err());
        assert!(validate_language("1x").is_err());
        assert!(validate_display_name("Anna\u{0}").is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Operator] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").is_err());
    }
}
