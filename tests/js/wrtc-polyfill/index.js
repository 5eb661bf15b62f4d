// Re-exports @roamhq/wrtc under webrtc-polyfill's names (what @thaunknown/simple-peer imports).
import wrtc from '@roamhq/wrtc'

export const {
  RTCPeerConnection,
  RTCSessionDescription,
  RTCIceCandidate,
  RTCDataChannel,
  MediaStream,
  MediaStreamTrack
} = wrtc
export default wrtc
