//! Shared by the integration tests (the CLI tests include `server.rs` by path).
pub mod server;
