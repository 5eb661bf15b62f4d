//! What the app remembers in the browser (localStorage): the viewer's P2P choice and, until
//! accounts exist, the pod's admin token for uploads. Storage may be missing or refused (private
//! windows, third-party iframes): then nothing is remembered and nothing fails.

const P2P_KEY: &str = "shoal.p2p";
const TOKEN_KEY: &str = "shoal.adminToken";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

fn set(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

fn remove(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}

/// Whether the viewer lets the player fetch from and share with other viewers (default: yes).
pub fn p2p_enabled() -> bool {
    get(P2P_KEY).as_deref() != Some("false")
}

pub fn set_p2p_enabled(on: bool) {
    set(P2P_KEY, if on { "true" } else { "false" });
}

pub fn admin_token() -> Option<String> {
    get(TOKEN_KEY).filter(|t| !t.trim().is_empty())
}

pub fn set_admin_token(token: &str) {
    set(TOKEN_KEY, token);
}

pub fn forget_admin_token() {
    remove(TOKEN_KEY);
}
