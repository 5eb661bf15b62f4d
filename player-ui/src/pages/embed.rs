//! The bare player for `<iframe>`s (`/embed/{uuid}`): no header, no footer, the player fills the
//! frame. URL options: `start=` (seconds, or `1m30s`), `autoplay=1`, `muted=1`, `p2p=0`.

use leptos::prelude::*;

use crate::api;
use crate::components::{MediaPlayer, PlayerOptions};
use crate::prefs;
use crate::stream::Snapshot;

/// What the embedding page asked for in the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub uuid: String,
    pub options: PlayerOptions,
    pub p2p: bool,
}

impl EmbedRequest {
    /// Reads `/embed/{uuid}?…` from the page's address.
    pub fn from_location(path: &str, search: &str) -> Option<Self> {
        let uuid = path.strip_prefix("/embed/")?.trim_end_matches('/');
        if uuid.is_empty() || uuid.contains('/') {
            return None;
        }
        let params = web_sys::UrlSearchParams::new_with_str(search).ok()?;
        let flag = |name: &str| {
            params
                .get(name)
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        };
        let p2p_off = params
            .get("p2p")
            .is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false"));
        Some(Self {
            uuid: uuid.to_owned(),
            options: PlayerOptions {
                autoplay: flag("autoplay"),
                muted: flag("muted"),
                start: params.get("start").as_deref().map_or(0.0, parse_time),
            },
            p2p: !p2p_off && prefs::p2p_enabled(),
        })
    }
}

/// `90`, `90.5`, `1m30s`, `1h2m3s` → seconds; anything else → 0.
fn parse_time(text: &str) -> f64 {
    if let Ok(s) = text.parse::<f64>() {
        return if s.is_finite() && s > 0.0 { s } else { 0.0 };
    }
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let Ok(n) = number.parse::<f64>() else {
                    return 0.0;
                };
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => return 0.0,
        }
    }
    total
}

#[component]
pub fn EmbedPage(request: Option<EmbedRequest>) -> impl IntoView {
    let Some(request) = request else {
        return view! { <p class="embed-message">"This embed link is not valid."</p> }.into_any();
    };
    let uuid = request.uuid.clone();
    let video = LocalResource::new(move || {
        let uuid = uuid.clone();
        async move { api::get_video(&uuid).await }
    });
    let stats = RwSignal::new(None::<Snapshot>);
    (move || match video.get() {
        None => ().into_any(),
        Some(Err(e)) => view! { <p class="embed-message" role="alert">{e}</p> }.into_any(),
        Some(Ok(video)) => {
            super::set_title(&format!("{} · Shoal", video.name));
            let watch_url = video.watch_url.clone();
            let name = video.name.clone();
            view! {
                <MediaPlayer video p2p=request.p2p stats options=request.options/>
                <a class="embed-title" href=watch_url target="_blank" rel="noopener">{name}</a>
            }
            .into_any()
        }
    })
    .into_any()
}
