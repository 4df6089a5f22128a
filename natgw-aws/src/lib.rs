//! natgw-aws: the AWS adapter of natgw (EC2, CloudWatch, CloudWatch Logs).
//!
//! Placeholder: the adapter trait and its aws-sdk implementation land with the live-AWS issue (#4).
//! Until then this crate has no AWS dependency, so the workspace builds in seconds. Its contract is
//! fixed already (docs/ARCHITECTURE.md): only read operations, natgw-core types in and out, no SDK
//! type crossing out of the crate.
