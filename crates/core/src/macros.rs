//! The `string_enum!` macro: closed sets of values stored and sent as short strings, and the [`StringEnum`]
//! trait through which the database layer stores any of them.

/// A closed set of values with one stored and wire string each.
pub trait StringEnum: Sized + Copy + Send + Sync + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The stored and wire form.
    fn as_str(self) -> &'static str;
    /// Parses the stored or wire form.
    fn parse(value: &str) -> crate::CoreResult<Self>;
}

/// Declares an enum whose variants have one stored/wire string each, with `as_str`, `parse`, `ALL`, serde,
/// [`StringEnum`], and (with the `openapi` feature) an OpenAPI schema.
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire form.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses the stored or wire form.
            pub fn parse(value: &str) -> $crate::CoreResult<Self> {
                match value {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::CoreError::invalid(format!(
                        concat!("unknown ", stringify!($name), " `{}`; expected one of: {}"),
                        other.chars().take(64).collect::<String>(),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl $crate::StringEnum for $name {
            const ALL: &'static [Self] = $name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            fn parse(value: &str) -> $crate::CoreResult<Self> {
                $name::parse(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::account::AccountStatus;
    use crate::message::MessageType;

    #[test]
    fn every_value_round_trips_through_its_string() {
        for value in MessageType::ALL {
            assert_eq!(MessageType::parse(value.as_str()), Ok(*value));
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{}\"", value.as_str()));
        }
        for value in AccountStatus::ALL {
            assert_eq!(AccountStatus::parse(&value.to_string()), Ok(*value));
        }
        assert!(MessageType::parse("hologram").is_err());
    }
}
