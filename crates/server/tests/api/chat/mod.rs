//! Chat over the realtime gateway.

mod bad_input;
mod flow;
mod gateway;
mod nodes;
mod offline;
#[path = "../../../../push/tests/support/push_service.rs"]
pub(crate) mod push_service;
mod storm;
pub(crate) mod support;
