//! End-to-end tests: the real application on port 0 with a fresh database, driven over
//! HTTP. Every test runs on SQLite, and again on PostgreSQL when
//! `MATSURI_TEST_POSTGRES_URL` is set (in CI it must be).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod auth_first;
mod bad_input;
mod cart;
mod catalog;
mod chat;
mod checkout;
mod events;
mod idempotency;
mod inventory;
mod live;
mod media;
mod ops;
mod recovery;
mod recs;
mod social;
mod storm;
mod tickets;
mod web;
