//! Ids are UUIDv7 (time-ordered, so indexes stay append-mostly) wrapped in a newtype per
//! entity, so an order id can never be passed where a product id is expected.

/// Defines an id newtype over a UUIDv7 string.
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self($crate::ids::new_uuid_v7())
            }

            /// Accepts only well-formed ids, so a malformed one never reaches the database.
            pub fn parse(text: &str) -> Option<Self> {
                $crate::ids::parse_uuid(text).map(Self)
            }

            /// Wraps an id read back from storage.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A new UUIDv7 in its hyphenated lowercase form.
pub fn new_uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An id as the OpenAPI document declares it: a UUID in text.
#[derive(Debug, Clone, utoipa::ToSchema)]
#[schema(value_type = String, format = "uuid")]
pub struct Id(pub String);

/// Normalises a client-supplied UUID, or `None` when it is not one.
pub fn parse_uuid(text: &str) -> Option<String> {
    uuid::Uuid::parse_str(text).ok().map(|u| u.to_string())
}

define_id!(
    /// A user account.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_uuids() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id));
        assert_eq!(UserId::parse("1; DROP TABLE users"), None);
        assert_eq!(UserId::parse(""), None);
    }

    #[test]
    fn ids_rise_with_time() {
        let a = UserId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = UserId::generate();
        assert!(a < b);
    }
}
