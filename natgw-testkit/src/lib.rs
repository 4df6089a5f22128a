//! natgw-testkit: the seeded NAT gateway scenario simulator with ground truth, used to test the analyzer.

pub mod moto;
pub mod sim;
