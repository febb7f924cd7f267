//! What happens once at start: the token secret, the staff user from the settings, and
//! the demo data.

use std::io::Write;

use anyhow::Context;
use rand::Rng;

use matsuri_accounts::NewUser;
use matsuri_core::{Role, Settings};
use matsuri_shop::ShopError;
use matsuri_tickets::{NewEvent, SectionRequest};

use crate::Components;

/// The token secret: the configured one, or one generated once and kept in the data dir.
pub(crate) fn token_secret(settings: &Settings) -> anyhow::Result<String> {
    if let Some(secret) = &settings.auth.token_secret {
        anyhow::ensure!(
            secret.expose().len() >= 32,
            "auth.token_secret must be at least 32 characters"
        );
        return Ok(secret.expose().to_owned());
    }
    let path = settings.data_dir.join("token-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let bytes: [u8; 32] = rand::rng().random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a token secret; set auth.token_secret when several nodes share a database");
    Ok(secret)
}

impl Components {
    /// Creates the staff user from `MATSURI_ADMIN_EMAIL` / `MATSURI_ADMIN_PASSWORD` if
    /// absent, and seeds the demo data when asked.
    pub async fn bootstrap(&self, settings: &Settings) -> anyhow::Result<()> {
        match (&settings.admin_email, &settings.admin_password) {
            (Some(email), Some(password)) => {
                let new =
                    NewUser::parse(email, password.expose(), "Administrator").map_err(|e| {
                        anyhow::anyhow!("the admin user from the settings is not valid: {e:?}")
                    })?;
                if self.accounts.ensure(new, Role::Staff).await? {
                    tracing::info!(email = %email, "created the staff user from the settings");
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                tracing::warn!(
                    "set both MATSURI_ADMIN_EMAIL and MATSURI_ADMIN_PASSWORD to create a staff user"
                );
            }
            (None, None) => {}
        }
        if settings.demo {
            seed_demo(self).await?;
        }
        Ok(())
    }
}

/// Demo users (password in brackets) and catalog; running it again changes nothing.
pub const DEMO_USERS: [(&str, &str, &str, Role); 3] = [
    (
        "staff@matsuri.localhost",
        "matsuri-staff",
        "Demo Staff",
        Role::Staff,
    ),
    (
        "fan@matsuri.localhost",
        "matsuri-fan",
        "Demo Fan",
        Role::Customer,
    ),
    (
        "streamer@matsuri.localhost",
        "matsuri-streamer",
        "Demo Streamer",
        Role::Streamer,
    ),
];

/// The demo's live room, on air.
const DEMO_LIVE: &str = "Matsuri Live: opening night";

const DEMO_PRODUCTS: [(&str, &str, &str, i64, i64); 5] = [
    (
        "TOUR-TEE-M",
        "Tour T-shirt (M)",
        "Black cotton tee with the 2026 tour dates.",
        3_500,
        200,
    ),
    (
        "TOUR-TEE-L",
        "Tour T-shirt (L)",
        "Black cotton tee with the 2026 tour dates.",
        3_500,
        200,
    ),
    (
        "PENLIGHT",
        "Penlight",
        "Twelve colours, two AA batteries included.",
        2_800,
        500,
    ),
    (
        "TOWEL",
        "Muffler towel",
        "Sports towel, 20 × 110 cm.",
        2_000,
        300,
    ),
    (
        "ACRYLIC-STAND",
        "Acrylic stand (limited)",
        "Numbered flash-sale item.",
        1_500,
        50,
    ),
];

const DEMO_EVENT: &str = "matsuri Live 2026 — Budokan";

/// A concert with 500 seats, its sale open, a month from now; made once.
async fn seed_demo_live(components: &Components) -> anyhow::Result<()> {
    let live = &components.live;
    let rooms = live
        .rooms(None, 100)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if rooms.items.iter().any(|room| room.title == DEMO_LIVE) {
        return Ok(());
    }
    let (email, password, _, role) = DEMO_USERS[2];
    let session = components
        .accounts
        .login(email, password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let streamer = matsuri_core::Identity {
        user_id: session.user.id,
        role,
    };
    let room = live
        .create_room(&streamer, DEMO_LIVE)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    live.start(&streamer, &room.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

async fn seed_demo_event(components: &Components) -> anyhow::Result<()> {
    let tickets = &components.tickets;
    let existing = tickets
        .events_after(None, 100)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if existing.iter().any(|e| e.name == DEMO_EVENT) {
        return Ok(());
    }
    let starts_at =
        matsuri_core::timefmt::rfc3339(components.clock.now_ms() + 30 * 24 * 3_600 * 1_000);
    let section = |name: &str, rows, seats_per_row, price| SectionRequest {
        name: name.into(),
        rows,
        seats_per_row,
        price,
    };
    let new = NewEvent::parse(
        DEMO_EVENT,
        &starts_at,
        None,
        None,
        None,
        &[
            section("Arena", 10, 20, 9_800),
            section("Stand", 10, 30, 7_800),
        ],
        tickets.settings(),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    tickets
        .create_event(new)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

pub async fn seed_demo(components: &Components) -> anyhow::Result<()> {
    for (email, password, name, role) in DEMO_USERS {
        let new = NewUser::parse(email, password, name).map_err(|e| anyhow::anyhow!("{e}"))?;
        components.accounts.ensure(new, role).await?;
    }
    for (sku, name, description, price, stock) in DEMO_PRODUCTS {
        let new = matsuri_shop::NewProduct::parse(sku, name, Some(description), price, stock)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match components.shop.create_product(new).await {
            Ok(_) | Err(ShopError::SkuTaken) => {}
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
    seed_demo_event(components).await?;
    seed_demo_live(components).await?;
    tracing::info!(
        staff = DEMO_USERS[0].0,
        staff_password = DEMO_USERS[0].1,
        customer = DEMO_USERS[1].0,
        customer_password = DEMO_USERS[1].1,
        streamer = DEMO_USERS[2].0,
        streamer_password = DEMO_USERS[2].1,
        "demo data ready (demo passwords only)"
    );
    Ok(())
}
