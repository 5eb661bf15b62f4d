//! WebRTC data-channel links, made exactly as WebTorrent JS peers expect (protocol §2.1): no
//! trickle ICE (the offer and answer carry every candidate, since the tracker relays one SDP
//! each way), one ordered reliable data channel created by the offerer before its offer, binary
//! messages as ArrayBuffers, and backpressure on `bufferedAmount`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
    RtcDataChannelType, RtcIceGatheringState, RtcPeerConnection, RtcSdpType,
    RtcSessionDescriptionInit,
};

use super::util;

/// Writes stop while this much is queued in the channel (as simple-peer does), and resume at
/// the `bufferedamountlow` event, when it has drained to [`LOW_WATER`].
pub const HIGH_WATER: u32 = 64 * 1024;
/// Resuming at half the high-water mark refills two or three blocks per event, where resuming
/// just under it woke the session once for every block sent (each wake-up is an event, a pump
/// and a trip into wasm). Two blocks still queued keep the channel busy while it refills.
const LOW_WATER: u32 = HIGH_WATER / 2;

/// How long a side waits for ICE gathering to finish before sending what it has (simple-peer
/// waits 5 s after the first candidate; on loopback or a LAN gathering takes milliseconds).
const GATHER_TIMEOUT_MS: u32 = 5_000;

/// What a link reports to its owner.
#[derive(Debug)]
pub enum LinkEvent {
    Open,
    Data(Vec<u8>),
    /// The channel drained to [`LOW_WATER`]: sending may resume.
    Writable,
    Closed,
}

pub type EventSink = Rc<dyn Fn(LinkEvent)>;

/// Event handlers kept alive as long as their link (shared with the answerer's channel hook).
type Handlers = Rc<RefCell<Vec<Closure<dyn FnMut(JsValue)>>>>;

/// One RTCPeerConnection with its single data channel.
pub struct Link {
    pc: RtcPeerConnection,
    channel: Rc<RefCell<Option<RtcDataChannel>>>,
    /// Event handlers, kept alive as long as the link.
    handlers: Handlers,
}

/// ICE servers as given by the page (none are needed on a LAN or loopback).
pub fn configuration(ice_servers: &JsValue) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if ice_servers.is_object() {
        config.set_ice_servers(ice_servers);
    } else {
        config.set_ice_servers(&Array::new());
    }
    config
}

impl Link {
    fn new(config: &RtcConfiguration) -> Result<Self, JsValue> {
        let pc = RtcPeerConnection::new_with_configuration(config)?;
        Ok(Self {
            pc,
            channel: Rc::new(RefCell::new(None)),
            handlers: Rc::new(RefCell::new(Vec::new())),
        })
    }

    /// The offering side: creates the channel, then an offer with every candidate.
    pub async fn offer(
        config: &RtcConfiguration,
        sink: EventSink,
    ) -> Result<(Self, String), JsValue> {
        let link = Self::new(config)?;
        let label = hex::encode(util::random_bytes::<20>());
        let channel = link.pc.create_data_channel(&label);
        link.adopt_channel(channel, sink);
        let offer = JsFuture::from(link.pc.create_offer()).await?;
        let sdp = Reflect::get(&offer, &"sdp".into())?
            .as_string()
            .unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        init.set_sdp(&sdp);
        JsFuture::from(link.pc.set_local_description(&init)).await?;
        let sdp = link.gathered_sdp().await;
        Ok((link, sdp))
    }

    /// The answering side: takes whatever channel the offerer opens.
    pub async fn answer(
        config: &RtcConfiguration,
        offer_sdp: &str,
        sink: EventSink,
    ) -> Result<(Self, String), JsValue> {
        let link = Self::new(config)?;
        {
            let channel_slot = link.channel.clone();
            let handlers = link.handlers.clone();
            let sink = sink.clone();
            let ondatachannel = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let Ok(event) = event.dyn_into::<RtcDataChannelEvent>() else {
                    return;
                };
                // If several arrive, the last one wins (as simple-peer does).
                install_channel(&channel_slot, &handlers, event.channel(), sink.clone());
            });
            link.pc
                .set_ondatachannel(Some(ondatachannel.as_ref().unchecked_ref()));
            link.handlers.borrow_mut().push(ondatachannel);
        }
        let remote = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        remote.set_sdp(offer_sdp);
        JsFuture::from(link.pc.set_remote_description(&remote)).await?;
        let answer = JsFuture::from(link.pc.create_answer()).await?;
        let sdp = Reflect::get(&answer, &"sdp".into())?
            .as_string()
            .unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        init.set_sdp(&sdp);
        JsFuture::from(link.pc.set_local_description(&init)).await?;
        let sdp = link.gathered_sdp().await;
        Ok((link, sdp))
    }

    /// The offerer receives the answer relayed by the tracker.
    pub async fn accept_answer(&self, answer_sdp: &str) -> Result<(), JsValue> {
        let remote = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        remote.set_sdp(answer_sdp);
        JsFuture::from(self.pc.set_remote_description(&remote)).await?;
        Ok(())
    }

    fn adopt_channel(&self, channel: RtcDataChannel, sink: EventSink) {
        install_channel(&self.channel, &self.handlers, channel, sink);
    }

    /// Waits for ICE gathering to complete (bounded), then reads the full local description.
    async fn gathered_sdp(&self) -> String {
        let mut waited = 0;
        while self.pc.ice_gathering_state() != RtcIceGatheringState::Complete
            && waited < GATHER_TIMEOUT_MS
        {
            util::sleep(20).await;
            waited += 20;
        }
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp())
            .unwrap_or_default();
        // Without trickle, the trickle option only confuses the far side (simple-peer drops it).
        sdp.lines()
            .filter(|l| !l.starts_with("a=ice-options:trickle"))
            .map(|l| format!("{l}\r\n"))
            .collect()
    }

    /// Sends one message. False when the channel is not open.
    pub fn send(&self, data: &[u8]) -> bool {
        let channel = self.channel.borrow();
        let Some(channel) = channel.as_ref() else {
            return false;
        };
        if channel.ready_state() != RtcDataChannelState::Open {
            return false;
        }
        channel.send_with_u8_array(data).is_ok()
    }

    /// Bytes queued in the channel and not yet sent.
    pub fn buffered(&self) -> u32 {
        self.channel
            .borrow()
            .as_ref()
            .map(|c| c.buffered_amount())
            .unwrap_or(0)
    }

    pub fn close(&self) {
        if let Some(channel) = self.channel.borrow_mut().take() {
            channel.set_onmessage(None);
            channel.set_onopen(None);
            channel.set_onclose(None);
            channel.set_onbufferedamountlow(None);
            channel.close();
        }
        self.pc.set_ondatachannel(None);
        self.pc.close();
        // The handlers may be running right now (a close can start inside one): drop them
        // later, which also breaks the answerer's handler → handlers reference cycle.
        let handlers = std::mem::take(&mut *self.handlers.borrow_mut());
        if !handlers.is_empty() {
            wasm_bindgen_futures::spawn_local(async move {
                util::sleep(0).await;
                drop(handlers);
            });
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

fn install_channel(
    slot: &Rc<RefCell<Option<RtcDataChannel>>>,
    handlers: &Handlers,
    channel: RtcDataChannel,
    sink: EventSink,
) {
    channel.set_binary_type(RtcDataChannelType::Arraybuffer);
    channel.set_buffered_amount_low_threshold(LOW_WATER);
    let on = |f: Box<dyn FnMut(JsValue)>| Closure::<dyn FnMut(JsValue)>::wrap(f);

    let s = sink.clone();
    let onopen = on(Box::new(move |_| s(LinkEvent::Open)));
    let s = sink.clone();
    let onmessage = on(Box::new(move |event: JsValue| {
        let Ok(event) = event.dyn_into::<MessageEvent>() else {
            return;
        };
        let data = event.data();
        if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            s(LinkEvent::Data(Uint8Array::new(buffer).to_vec()));
        } else if let Some(text) = data.as_string() {
            // simple-peer turns text frames into their UTF-8 bytes; so do we.
            s(LinkEvent::Data(text.into_bytes()));
        }
    }));
    let s = sink.clone();
    let onclose = on(Box::new(move |_| s(LinkEvent::Closed)));
    let s = sink;
    let onlow = on(Box::new(move |_| s(LinkEvent::Writable)));

    channel.set_onopen(Some(onopen.as_ref().unchecked_ref()));
    channel.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    channel.set_onclose(Some(onclose.as_ref().unchecked_ref()));
    channel.set_onbufferedamountlow(Some(onlow.as_ref().unchecked_ref()));
    let mut kept = handlers.borrow_mut();
    kept.extend([onopen, onmessage, onclose, onlow]);
    if let Some(old) = slot.borrow_mut().replace(channel) {
        old.close();
    }
}
