//! The push service against a real database: notifications and their gathering, the
//! subscription rules, the routes, and Web Push delivered through the bus to a test push
//! service that decrypts every message and verifies its VAPID token. Every story runs on
//! SQLite, and again on PostgreSQL when `MATSURI_TEST_POSTGRES_URL` is set (in CI it
//! must be).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/push_service.rs"]
mod push_service;

mod helpers;

mod delivery;
mod endpoints;
mod gathering;
mod routes;
