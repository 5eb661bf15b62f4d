// Page errors are kept where tests (and people in the console) can read them back:
// script errors, failed resource loads, rejected promises and console.error calls.
window.__shoalErrors = [];
addEventListener('error', function (e) {
  // A failed preload is only a hint gone wrong (Firefox reports an aborted modulepreload this
  // way); the real load that follows reports its own error if it fails.
  var t = e.target;
  if (t && t.tagName === 'LINK' && /preload/.test(t.rel || '')) return;
  var what = e.message || (e.target && (e.target.src || e.target.href)) || 'error';
  window.__shoalErrors.push(String(what));
}, true);
addEventListener('unhandledrejection', function (e) {
  window.__shoalErrors.push('unhandled rejection: ' + String(e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__shoalErrors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
