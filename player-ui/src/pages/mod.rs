//! One module per page of the app.

mod embed;
mod home;
mod search;
mod upload;
mod watch;

pub use embed::{EmbedPage, EmbedRequest};
pub use home::{set_title, Home};
pub use search::Search;
pub use upload::Upload;
pub use watch::Watch;

use leptos::prelude::*;

/// Shown for any path the app does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    set_title("Page not found · Shoal");
    view! {
        <section class="empty">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the home page"</a></p>
        </section>
    }
}

/// The pod's name and version, from its health endpoint: proof that the app and the pod talk.
#[component]
pub fn PodStatus() -> impl IntoView {
    let health = LocalResource::new(crate::api::health);
    view! {
        <p class="pod-status" id="pod-status">
            {move || match health.get() {
                None => "Connecting to the pod…".to_string(),
                Some(Ok(h)) if h.status == "ok" => {
                    format!("Pod online · Shoal {} · app {}", h.version, client_core::VERSION)
                }
                Some(Ok(h)) => format!("Pod status: {} · Shoal {}", h.status, h.version),
                Some(Err(e)) => format!("Pod unreachable: {e}"),
            }}
        </p>
    }
}
