//! natgw-testkit: the seeded NAT gateway scenario simulator with ground truth, used to test the analyzer,
//! a moto server with a CBOR proxy for end-to-end tests, and (feature `aws`) a simulated AWS account
//! behind the adapter's mockall mock.
// The workspace denies unsafe code; only natgw-cli maps files (`input/mapped.rs`). Never here.
#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod moto;
pub mod sim;
