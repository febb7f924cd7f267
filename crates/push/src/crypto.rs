//! Message encryption for Web Push (RFC 8291 over RFC 8188 `aes128gcm`): the sender's
//! side. Each message gets a fresh key pair and salt; the browser derives the same content
//! key from its subscription's private key and auth secret.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size written in the header. A push service takes at most 4,096 bytes of
/// body, so every message is one record.
const RECORD_SIZE: u32 = 4096;
/// The header: salt (16), record size (4), key id length (1), the sender's key (65).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The AES-GCM tag.
const TAG_LEN: usize = 16;
/// The longest plaintext one message carries: a 4,096-byte body less the header, the
/// tag and the record's delimiter.
pub(crate) const MAX_PLAINTEXT: usize = 4096 - HEADER_LEN - TAG_LEN - 1;

/// Encrypts `plaintext` for the browser whose subscription has the public key `ua_public`
/// (65 bytes, uncompressed) and the 16-byte `auth_secret`: the whole request body.
pub(crate) fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let sender = SecretKey::try_generate()
        .map_err(|e| anyhow::anyhow!("no randomness for a message key: {e}"))?;
    let salt = <[u8; 16]>::try_generate()
        .map_err(|e| anyhow::anyhow!("no randomness for a message salt: {e}"))?;
    encrypt_with(plaintext, ua_public, auth_secret, &sender, &salt)
}

/// [`encrypt`] with the sender's key and the salt given (the RFC's test vector fixes both).
fn encrypt_with(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    sender: &SecretKey,
    salt: &[u8; 16],
) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        plaintext.len() <= MAX_PLAINTEXT,
        "a push message holds at most {MAX_PLAINTEXT} bytes, not {}",
        plaintext.len()
    );
    let browser = PublicKey::from_sec1_bytes(ua_public)
        .map_err(|_| anyhow::anyhow!("the subscription's p256dh key is not a P-256 point"))?;
    let as_public = sender.public_key().to_sec1_point(false);
    let as_public = as_public.as_bytes();
    let shared = sender.diffie_hellman(&browser);

    // RFC 8291 §3.4: the input keying material, bound to both public keys and the secret.
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0_u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| anyhow::anyhow!("HKDF output length"))?;

    // RFC 8188 §2.2 and §2.3: the content key and nonce from the salt.
    let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0_u8; 16];
    let mut nonce = [0_u8; 12];
    content
        .expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|()| content.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|_| anyhow::anyhow!("HKDF output length"))?;

    // One record, which is the last: the plaintext and the delimiter 2.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| anyhow::anyhow!("AES key length"))?;
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| anyhow::anyhow!("encrypting a push message failed"))?;

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// RFC 8291, Appendix A.
    #[test]
    fn the_rfc_example_encrypts_to_the_rfc_body() {
        let sender =
            SecretKey::from_slice(&bytes("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let salt: [u8; 16] = bytes("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            b"When I grow up, I want to be a watermelon",
            &bytes(
                "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            ),
            &bytes("BTBZMqHH6r4Tts7J_aSIgg"),
            &sender,
            &salt,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn a_message_fills_at_most_one_record() {
        let browser = SecretKey::try_generate()
            .unwrap()
            .public_key()
            .to_sec1_point(false);
        let fits = encrypt(&[b'a'; MAX_PLAINTEXT], browser.as_bytes(), &[7; 16]);
        assert_eq!(fits.map(|b| b.len()).ok(), Some(4096));
        assert!(encrypt(&[b'a'; MAX_PLAINTEXT + 1], browser.as_bytes(), &[7; 16]).is_err());
        assert!(encrypt(b"hi", &[4; 65], &[7; 16]).is_err());
    }
}
