// Installs @roamhq/wrtc's classes on globalThis, as webrtc-polyfill/polyfill does.
import wrtc from '@roamhq/wrtc'

for (const [name, value] of Object.entries(wrtc)) {
  if (name.startsWith('RTC') && !(name in globalThis)) globalThis[name] = value
}
