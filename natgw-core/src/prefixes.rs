//! AWS service address ranges given as data: the S3 and DynamoDB prefixes of a region, from the
//! region's managed prefix lists or from AWS's published `ip-ranges.json`. A destination inside them
//! can be reached through a gateway VPC endpoint instead of the NAT gateway.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::net::CidrSet;

/// A service with gateway VPC endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub enum GatewayService {
    S3,
    DynamoDB,
}

impl GatewayService {
    /// The endpoint service name in `region` (`com.amazonaws.us-east-1.s3`).
    pub fn endpoint_service(self, region: &str) -> String {
        match self {
            GatewayService::S3 => format!("com.amazonaws.{region}.s3"),
            GatewayService::DynamoDB => format!("com.amazonaws.{region}.dynamodb"),
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            GatewayService::S3 => "S3",
            GatewayService::DynamoDB => "DynamoDB",
        }
    }
}

/// The S3 and DynamoDB prefixes of one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePrefixes {
    /// The region the prefixes belong to (used in endpoint commands), if known.
    pub region: Option<String>,
    pub s3: CidrSet,
    pub dynamodb: CidrSet,
}

/// `ip-ranges.json` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not an AWS ip-ranges.json document: {0}")]
pub struct IpRangesError(String);

#[derive(Deserialize)]
struct IpRanges {
    prefixes: Vec<V4Prefix>,
    #[serde(default)]
    ipv6_prefixes: Vec<V6Prefix>,
}

#[derive(Deserialize)]
struct V4Prefix {
    ip_prefix: IpNet,
    region: String,
    service: String,
}

#[derive(Deserialize)]
struct V6Prefix {
    ipv6_prefix: IpNet,
    region: String,
    service: String,
}

impl ServicePrefixes {
    /// The gateway service whose prefixes hold `addr`.
    pub fn service_of(&self, addr: &IpAddr) -> Option<GatewayService> {
        if self.s3.contains(addr) {
            Some(GatewayService::S3)
        } else if self.dynamodb.contains(addr) {
            Some(GatewayService::DynamoDB)
        } else {
            None
        }
    }

    /// Reads AWS's `ip-ranges.json` (the JSON text; the caller reads the file). With `region`, only
    /// that region's prefixes are kept; without it, all regions' are, and the region is left unknown
    /// unless only one region has S3 or DynamoDB prefixes in the document.
    pub fn from_ip_ranges_json(json: &str, region: Option<&str>) -> Result<ServicePrefixes, IpRangesError> {
        let doc: IpRanges = serde_json::from_str(json).map_err(|e| IpRangesError(e.to_string()))?;
        let entries = doc
            .prefixes
            .into_iter()
            .map(|p| (p.ip_prefix, p.region, p.service))
            .chain(doc.ipv6_prefixes.into_iter().map(|p| (p.ipv6_prefix, p.region, p.service)));
        let (mut s3, mut ddb, mut regions) = (Vec::new(), Vec::new(), Vec::new());
        for (net, r, service) in entries {
            if region.is_some_and(|want| want != r) {
                continue;
            }
            match service.as_str() {
                "S3" => s3.push(net),
                "DYNAMODB" => ddb.push(net),
                _ => continue,
            }
            regions.push(r);
        }
        regions.sort();
        regions.dedup();
        let region = region.map(str::to_owned).or_else(|| (regions.len() == 1).then(|| regions.remove(0)));
        Ok(ServicePrefixes { region, s3: CidrSet::new(s3), dynamodb: CidrSet::new(ddb) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"syncToken":"1","createDate":"2026-11-01-00-00-00","prefixes":[
      {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"S3","network_border_group":"us-east-1"},
      {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"AMAZON","network_border_group":"us-east-1"},
      {"ip_prefix":"3.218.180.0/22","region":"us-east-1","service":"DYNAMODB","network_border_group":"us-east-1"},
      {"ip_prefix":"52.92.16.0/20","region":"eu-west-1","service":"S3","network_border_group":"eu-west-1"}],
      "ipv6_prefixes":[{"ipv6_prefix":"2600:1fa0:8000::/39","region":"us-east-1","service":"S3","network_border_group":"us-east-1"}]}"#;

    #[test]
    fn reads_ip_ranges_for_a_region() {
        let p = ServicePrefixes::from_ip_ranges_json(DOC, Some("us-east-1")).unwrap();
        assert_eq!(p.service_of(&"52.217.1.1".parse().unwrap()), Some(GatewayService::S3));
        assert_eq!(p.service_of(&"3.218.181.9".parse().unwrap()), Some(GatewayService::DynamoDB));
        assert_eq!(p.service_of(&"52.92.16.1".parse().unwrap()), None);
        assert_eq!(p.service_of(&"2600:1fa0:8000::1".parse().unwrap()), Some(GatewayService::S3));
        let all = ServicePrefixes::from_ip_ranges_json(DOC, None).unwrap();
        assert_eq!(all.region, None);
        assert_eq!(all.service_of(&"52.92.16.1".parse().unwrap()), Some(GatewayService::S3));
        assert!(ServicePrefixes::from_ip_ranges_json("{}", None).is_err());
    }
}
