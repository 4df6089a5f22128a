//! natgw-testkit: the seeded NAT gateway scenario simulator with ground truth, used to test the analyzer,
//! a moto server with a CBOR proxy for end-to-end tests, and (feature `aws`) a simulated AWS account
//! behind the adapter's mockall mock.

#[cfg(feature = "aws")]
pub mod aws;
pub mod moto;
pub mod sim;
