//! Integration tests of `aws-natgw` (one test binary, see Cargo.toml `autotests = false`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod live_account;
mod moto;
mod tidy;
