//! The adapter's errors, each one a user can act on, and the single place where SDK errors become them.
//!
//! Retries and backoff are the SDK's (standard mode, see [`crate::sdk::MAX_ATTEMPTS`]): an error
//! reaching this module has already been retried where retrying made sense.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// What went wrong talking to AWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No credentials could be found or loaded (also: an expired SSO session).
    #[error("no usable AWS credentials: {detail}. {hint}")]
    NoCredentials { detail: String, hint: String },
    /// AWS rejected the credentials (expired session token, unknown key, wrong clock).
    #[error("AWS rejected the credentials ({code}: {message}). {hint}")]
    InvalidCredentials { code: String, message: String, hint: String },
    /// No region configured.
    #[error("no AWS region configured. {hint}")]
    NoRegion { hint: String },
    /// The caller lacks an IAM permission.
    #[error("access denied: the caller needs the IAM permission {action} ({message}); see docs/iam-policy.json")]
    AccessDenied { action: &'static str, message: String },
    /// A named resource does not exist.
    #[error("{what} not found{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    NotFound { what: String, message: String },
    /// Still throttled after the SDK's retries (also: too many concurrent Logs Insights queries).
    #[error("AWS throttled {operation} even after retries ({message}); wait a minute or narrow the request")]
    Throttled { operation: &'static str, message: String },
    /// Any other error AWS answered with.
    #[error("{operation} failed: {code}: {message}")]
    Service { operation: &'static str, code: String, message: String },
    /// The request never got an answer: DNS, TLS, connection, timeout.
    #[error("could not reach AWS for {operation}: {message}")]
    Transport { operation: &'static str, message: String },
    /// AWS answered something this adapter cannot use.
    #[error("unexpected answer to {operation}: {message}")]
    InvalidResponse { operation: &'static str, message: String },
    /// The request was refused before sending it (bad arguments).
    #[error("invalid request to {operation}: {message}")]
    InvalidRequest { operation: &'static str, message: String },
    /// A Logs Insights query ended without results.
    #[error("the Logs Insights {kind} query ended {status}: {hint}")]
    QueryFailed { kind: String, status: String, hint: String },
}

/// `Result` with the adapter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to configure credentials, shown with every credentials error.
pub const CREDENTIALS_HINT: &str = "Configure credentials with `aws configure` (access keys), `aws sso login --profile NAME` \
     (IAM Identity Center), or pick a profile with AWS_PROFILE=NAME or --profile NAME; on EC2, ECS or \
     Lambda an attached role is used automatically.";

/// How to configure a region.
pub const REGION_HINT: &str =
    "Pass --region REGION, set AWS_REGION, or set `region` in the profile (`aws configure set region REGION`).";

/// Codes meaning the caller lacks a permission.
const ACCESS_DENIED: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"];

/// Codes meaning the credentials themselves were refused.
const BAD_CREDENTIALS: &[&str] = &[
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
];

/// The throttling codes the SDK's standard retry classifier retries (aws-runtime `THROTTLING_ERRORS`).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
];

/// Turn any SDK error into an [`Error`]. `action` is the IAM action of the call (`ec2:DescribeVpcs`),
/// also used as the operation name; `what` names the resource for not-found errors.
pub(crate) fn from_sdk<E, R>(action: &'static str, what: impl FnOnce() -> String, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + 'static,
{
    if let Some(cause) = credentials_failure(&err) {
        return Error::NoCredentials { detail: cause, hint: CREDENTIALS_HINT.to_owned() };
    }
    match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or_default().to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            from_code(action, what, code, message)
        }
        SdkError::TimeoutError(_) => {
            Error::Transport { operation: action, message: "timed out (after the SDK's retries)".to_owned() }
        }
        SdkError::DispatchFailure(_) => Error::Transport { operation: action, message: one_line(&err) },
        SdkError::ResponseError(_) => Error::InvalidResponse { operation: action, message: one_line(&err) },
        SdkError::ConstructionFailure(_) => Error::InvalidRequest { operation: action, message: one_line(&err) },
        _ => Error::Transport { operation: action, message: one_line(&err) },
    }
}

/// Classify a service error by its code.
pub(crate) fn from_code(action: &'static str, what: impl FnOnce() -> String, code: String, message: String) -> Error {
    let c = code.as_str();
    if ACCESS_DENIED.contains(&c) {
        Error::AccessDenied { action, message }
    } else if BAD_CREDENTIALS.contains(&c) {
        Error::InvalidCredentials { code, message, hint: CREDENTIALS_HINT.to_owned() }
    } else if THROTTLING.contains(&c) {
        Error::Throttled { operation: action, message }
    } else if c.ends_with(".NotFound") || c.ends_with("NotFound") || c == "ResourceNotFoundException" {
        Error::NotFound { what: what(), message }
    } else {
        Error::Service { operation: action, code, message }
    }
}

/// The credentials provider's failure, if that is what stopped the request. Identity resolution fails
/// before sending, so the SDK reports it as a dispatch (or construction) failure wrapping a
/// [`CredentialsError`]; walk the source chain for it.
fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(one_line(c));
        }
        cur = e.source();
    }
    None
}

/// An error and its sources' messages on one line, without the SDK's Debug dumps: what a person
/// reads in a terminal (`no credentials found in chain. Attempted: Environment: …; Profile: …`).
fn one_line(err: &(dyn StdError + 'static)) -> String {
    const NOT_ENABLED: &str = "the credential provider was not enabled";
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.dedup();
    if parts.len() > 1 && parts[0] == NOT_ENABLED {
        parts.remove(0);
    }
    let text = parts.join(": ");
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join("; ").replace("Attempted:;", "Attempted:").replace(&format!(": {NOT_ENABLED}: "), ": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(code: &str) -> Error {
        from_code("ec2:DescribeVpcs", || "VPC vpc-1".to_owned(), code.to_owned(), "m".to_owned())
    }

    #[test]
    fn codes_map_to_actionable_errors() {
        assert_eq!(
            classify("UnauthorizedOperation"),
            Error::AccessDenied { action: "ec2:DescribeVpcs", message: "m".into() }
        );
        assert_eq!(
            classify("InvalidVpcID.NotFound"),
            Error::NotFound { what: "VPC vpc-1".into(), message: "m".into() }
        );
        assert_eq!(
            classify("RequestLimitExceeded"),
            Error::Throttled { operation: "ec2:DescribeVpcs", message: "m".into() }
        );
        assert!(matches!(classify("ExpiredToken"), Error::InvalidCredentials { code, .. } if code == "ExpiredToken"));
        assert_eq!(
            classify("OptInRequired"),
            Error::Service { operation: "ec2:DescribeVpcs", code: "OptInRequired".into(), message: "m".into() }
        );
    }

    #[test]
    fn messages_name_the_action_and_how_to_fix() {
        let e = Error::AccessDenied { action: "logs:StartQuery", message: "not authorized".into() };
        assert!(e.to_string().contains("logs:StartQuery"));
        let e = Error::NoCredentials { detail: "no providers in chain".into(), hint: CREDENTIALS_HINT.into() };
        assert!(e.to_string().contains("aws configure") && e.to_string().contains("AWS_PROFILE"));
        assert!(e.to_string().contains("aws sso login"));
    }
}
