//! The interim admin token: until accounts exist, every write needs
//! `Authorization: Bearer <token>`. The token comes from `SHOAL_ADMIN_TOKEN`, or is generated at
//! first start and kept in `<data-dir>/admin-token` (mode 0600) so that it survives restarts.

use std::io::Write;

use anyhow::Context;
use rand::RngCore;

use crate::Config;

const TOKEN_FILE: &str = "admin-token";

/// The token in force: configured, else read from the data dir, else generated and written.
pub fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = config.admin_token.as_deref().map(str::trim) {
        if token.len() < 16 {
            anyhow::bail!("SHOAL_ADMIN_TOKEN is too short: use at least 16 characters");
        }
        return Ok(token.to_owned());
    }
    let path = config.data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}

/// Whether a request's `Authorization` header carries the admin token. The comparison takes the
/// same time whatever the guess, so the token cannot be found byte by byte.
pub fn is_admin(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_data_dir(dir.path());
        let first = admin_token(&config).unwrap();
        assert_eq!(first.len(), 48);
        assert_eq!(admin_token(&config).unwrap(), first);
    }

    #[test]
    fn configured_token_wins_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path());
        config.admin_token = Some("0123456789abcdef-secret".into());
        assert_eq!(admin_token(&config).unwrap(), "0123456789abcdef-secret");
        config.admin_token = Some("short".into());
        assert!(admin_token(&config).is_err());
    }

    #[test]
    fn bearer_check() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!is_admin(&headers, "abc"));
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert!(is_admin(&headers, "abc"));
        assert!(!is_admin(&headers, "abd"));
        assert!(!is_admin(&headers, "abcd"));
    }
}
