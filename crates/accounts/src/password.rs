//! argon2id hashing. Hashing is CPU-heavy by design, so it runs on the blocking pool.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// The cost of new hashes. Stored hashes carry their own parameters, so changing these
/// never locks anyone out.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl PasswordPolicy {
    fn hasher(self) -> anyhow::Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// The PHC string of a fresh salted hash.
    pub async fn hash(self, password: String) -> anyhow::Result<String> {
        tokio::task::spawn_blocking(move || {
            let hash = self
                .hasher()?
                .hash_password(password.as_bytes())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
            Ok(hash.to_string())
        })
        .await?
    }

    /// Whether `password` matches the stored PHC string.
    pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let policy = PasswordPolicy {
            memory_kib: 256,
            iterations: 1,
        };
        let hash = policy.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            PasswordPolicy::verify("correct horse".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !PasswordPolicy::verify("wrong horse".into(), hash)
                .await
                .unwrap()
        );
    }
}
