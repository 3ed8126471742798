//! ApiVersions: the versions in `kafka::versions`. A version newer than ours gets a v0 body with
//! UNSUPPORTED_VERSION and our full list, so the client retries with one we serve.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::wire::context::{encode_response, DispatchError, RequestContext};
use crate::wire::versions::SUPPORTED;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, min, max)| ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max))
        .collect()
}

pub fn handle(_ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys()).with_finalized_features_epoch(-1)
}

pub fn unsupported_version(ctx: &RequestContext) -> Result<Bytes, DispatchError> {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    encode_response(ctx.api, 0, ctx.header.correlation_id, &body)
}
