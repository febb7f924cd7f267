//! Signed QR tickets (seed 001 §4 "QRコード"). A ticket's QR code carries an EdDSA
//! (Ed25519) signed JWT naming the ticket, event and seat, so a scanner at the gate can
//! check it offline with the public key from `GET /tickets/signing-key`; staff `verify`
//! additionally marks the ticket used, once. The key pair is made on first start and kept
//! in the database, so every node signs with the same key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use matsuri_core::clock::Millis;
use matsuri_db::Db;

use crate::TicketError;

/// What a ticket's QR payload says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The ticket id.
    pub sub: String,
    pub evt: String,
    pub seat: String,
    /// The seat as people read it, e.g. `A 3-12`.
    pub lbl: String,
    pub iat: i64,
    pub iss: String,
}

const ISSUER: &str = "matsuri-tickets";
const KEY_ID: &str = "matsuri-tickets-1";

pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    public_key: String,
}

impl Signer {
    /// The shared key pair, made (once, whichever node is first) if there is none yet.
    pub(crate) async fn load_or_create(db: &Db, now: Millis) -> anyhow::Result<Self> {
        if let Some(signer) = Self::load(db).await? {
            return Ok(signer);
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating the ticket signing key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| anyhow::anyhow!("reading the new ticket signing key: {e}"))?;
        sqlx::query(
            "INSERT INTO ticket_signing_keys (id, private_key, public_key, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(STANDARD.encode(pkcs8.as_ref()))
        .bind(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
        .bind(now)
        .execute(db.writer())
        .await?;
        Self::load(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the ticket signing key was not stored"))
    }

    async fn load(db: &Db) -> anyhow::Result<Option<Self>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT private_key, public_key FROM ticket_signing_keys WHERE id = 1")
                .fetch_optional(db.writer())
                .await?;
        let Some((private_key, public_key)) = row else {
            return Ok(None);
        };
        let pkcs8 = STANDARD.decode(private_key)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["sub", "iss"]);
        validation.validate_exp = false;
        Ok(Some(Self {
            encoding: EncodingKey::from_ed_der(&pkcs8),
            decoding: DecodingKey::from_ed_components(&public_key)?,
            validation,
            public_key,
        }))
    }

    pub(crate) fn sign(
        &self,
        ticket_id: &str,
        event_id: &str,
        seat_id: &str,
        label: &str,
        now: Millis,
    ) -> Result<String, TicketError> {
        let claims = TicketClaims {
            sub: ticket_id.to_owned(),
            evt: event_id.to_owned(),
            seat: seat_id.to_owned(),
            lbl: label.to_owned(),
            iat: now.div_euclid(1000),
            iss: ISSUER.to_owned(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| TicketError::Internal(anyhow::anyhow!("signing a ticket: {e}")))
    }

    /// The claims of a genuine payload; `None` for anything forged, altered or garbled.
    pub(crate) fn verify(&self, payload: &str) -> Option<TicketClaims> {
        jsonwebtoken::decode::<TicketClaims>(payload.trim(), &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }

    /// The public key as a JSON Web Key set, for scanners.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": KEY_ID,
                "x": self.public_key,
            }]
        })
    }
}

/// Where a ticket's QR image is served.
pub(crate) fn qr_url(ticket_id: &str) -> String {
    format!("/api/v1/tickets/{ticket_id}/qr.svg")
}

/// The QR code of `payload` as an SVG image.
pub(crate) fn qr_svg(payload: &str) -> Result<String, TicketError> {
    let code = qrcode::QrCode::new(payload.as_bytes())
        .map_err(|e| TicketError::Internal(anyhow::anyhow!("encoding a QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}
