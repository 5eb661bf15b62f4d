//! Home: what this pod has to watch.

use leptos::prelude::*;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <section class="home">
            <h1 id="home-title">"Watch together, stream from each other"</h1>
            <p>"Videos and audio on this pod play from other viewers' browsers as well as from the pod."</p>
        </section>
    }
}
