//! Who may change the cluster through the admin API. With an admin token (`admin_token` or
//! `CHRONIK_ADMIN_TOKEN`) a mutation needs `Authorization: Bearer <token>`; without one, mutations are
//! taken only from the local host itself (127.0.0.1 or ::1 — other loopback addresses such as
//! 127.0.0.2 stand for other hosts in tests and count as remote).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, StatusCode};

/// Refusal: the HTTP status and the message to answer with.
pub type Refusal = (StatusCode, String);

pub fn check(token: Option<&str>, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Refusal> {
    match token {
        Some(token) => {
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match given {
                Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
                Some(_) => Err((StatusCode::UNAUTHORIZED, "wrong admin token".into())),
                None => Err((StatusCode::UNAUTHORIZED, "this cluster needs an admin token: Authorization: Bearer <token>".into())),
            }
        }
        None if is_local(peer.ip()) => Ok(()),
        None => Err((
            StatusCode::FORBIDDEN,
            format!("no admin_token is set, so changes are accepted from the local host only, not from {}", peer.ip()),
        )),
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST),
    }
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            if let Ok(v) = a.parse() {
                h.insert(axum::http::header::AUTHORIZATION, v);
            }
        }
        h
    }

    fn from(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 4000)
    }

    #[test]
    fn token_rules() {
        assert!(check(Some("s3"), &headers(Some("Bearer s3")), from("10.0.0.9")).is_ok());
        assert_eq!(check(Some("s3"), &headers(Some("Bearer nope")), from("127.0.0.1")).map_err(|e| e.0), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check(Some("s3"), &headers(None), from("127.0.0.1")).map_err(|e| e.0), Err(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn without_a_token_only_the_local_host() {
        assert!(check(None, &headers(None), from("127.0.0.1")).is_ok());
        assert!(check(None, &headers(None), from("::1")).is_ok());
        assert_eq!(check(None, &headers(None), from("127.0.0.2")).map_err(|e| e.0), Err(StatusCode::FORBIDDEN));
        assert_eq!(check(None, &headers(None), from("10.1.2.3")).map_err(|e| e.0), Err(StatusCode::FORBIDDEN));
    }
}
