//! The IAM actions the adapter calls: one constant per API call, all read-only. `docs/iam-policy.json`
//! grants exactly [`ACTIONS`]; a test keeps the two (and the calls in `sdk.rs`) in sync.

macro_rules! actions {
    ($($name:ident = $action:literal;)*) => {
        $(
            #[doc = concat!("`", $action, "`")]
            pub const $name: &str = $action;
        )*
        /// Every IAM action natgw calls, as in `docs/iam-policy.json`.
        pub const ACTIONS: &[&str] = &[$($name),*];
        /// `(constant name, action)`, for the sync test.
        #[cfg(test)]
        const NAMED: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}

actions! {
    DESCRIBE_NAT_GATEWAYS = "ec2:DescribeNatGateways";
    DESCRIBE_VPCS = "ec2:DescribeVpcs";
    DESCRIBE_SUBNETS = "ec2:DescribeSubnets";
    DESCRIBE_ROUTE_TABLES = "ec2:DescribeRouteTables";
    DESCRIBE_VPC_ENDPOINTS = "ec2:DescribeVpcEndpoints";
    DESCRIBE_MANAGED_PREFIX_LISTS = "ec2:DescribeManagedPrefixLists";
    GET_MANAGED_PREFIX_LIST_ENTRIES = "ec2:GetManagedPrefixListEntries";
    DESCRIBE_FLOW_LOGS = "ec2:DescribeFlowLogs";
    DESCRIBE_REGIONS = "ec2:DescribeRegions";
    GET_METRIC_DATA = "cloudwatch:GetMetricData";
    DESCRIBE_LOG_GROUPS = "logs:DescribeLogGroups";
    START_QUERY = "logs:StartQuery";
    GET_QUERY_RESULTS = "logs:GetQueryResults";
    STOP_QUERY = "logs:StopQuery";
    FILTER_LOG_EVENTS = "logs:FilterLogEvents";
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const POLICY: &str = include_str!("../../docs/iam-policy.json");
    const SDK: &str = include_str!("sdk.rs");

    fn policy_actions() -> BTreeSet<String> {
        let doc: serde_json::Value = serde_json::from_str(POLICY).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        let mut out = BTreeSet::new();
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Effect"], "Allow", "the policy only allows");
            match &st["Action"] {
                serde_json::Value::String(a) => {
                    out.insert(a.clone());
                }
                serde_json::Value::Array(v) => out.extend(v.iter().map(|a| a.as_str().unwrap().to_owned())),
                other => panic!("unexpected Action {other}"),
            }
        }
        out
    }

    #[test]
    fn iam_policy_grants_exactly_the_actions_called() {
        let code: BTreeSet<String> = ACTIONS.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(code.len(), ACTIONS.len(), "duplicate action");
        assert_eq!(policy_actions(), code, "docs/iam-policy.json and natgw_aws::ACTIONS differ");
    }

    #[test]
    fn every_action_is_used_by_the_sdk_implementation() {
        for (name, action) in NAMED {
            assert!(SDK.contains(&format!("actions::{name}")), "{action} ({name}) is declared but never called");
        }
        // And no call names an action outside the list.
        for (i, _) in SDK.match_indices("actions::") {
            let name: String =
                SDK[i + "actions::".len()..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            assert!(NAMED.iter().any(|(n, _)| *n == name), "sdk.rs uses unknown action constant {name}");
        }
    }

    #[test]
    fn every_action_is_read_only() {
        for a in ACTIONS {
            let (_, verb) = a.split_once(':').unwrap();
            let read = ["Describe", "Get", "List"].iter().any(|p| verb.starts_with(p))
                || ["StartQuery", "StopQuery", "FilterLogEvents"].contains(&verb);
            assert!(read, "{a} is not a read-only action");
        }
    }
}
