// The page heraldd serves on GET / of the client port: the quickest way to
// see a broadcast arrive in a browser, and the page the headless-Chromium
// test drives. Through the client library at /herald.js it subscribes to the
// audiences in its own query string (?audience=a&audience=b, optional token=,
// tenant=, transport=sse) and lists every announcement once.
#pragma once

#include <string_view>

namespace herald::channels {

inline constexpr std::string_view demo_page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Herald live</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem; max-width: 48rem; }
  #status { font-weight: bold; }
  li.gap { background: #fff3cd; }
  li { margin: .4rem 0; padding: .4rem .6rem; background: #f3f3f3; border-radius: 4px; }
  code { color: #555; }
</style>
</head>
<body>
<h1>Herald live</h1>
<p>Audiences: <code id="audiences"></code> &middot; <span id="status">connecting</span></p>
<ol id="messages"></ol>
<script type="module">
  // The client library heraldd serves beside this page (clients/js/herald.js):
  // it reconnects with the positions of every audience, drops duplicates and
  // reports gaps, so each announcement is listed exactly once.
  import { HeraldClient } from '/herald.js';
  const params = new URLSearchParams(location.search);
  const audiences = params.has('audience') ? params.getAll('audience') : ['lineup.rock-am-ring'];
  document.getElementById('audiences').textContent = audiences.join(', ');
  const status = document.getElementById('status');
  const list = document.getElementById('messages');
  window.heraldCloseCodes = [];  // every close, for tests and debugging
  window.heraldGaps = [];
  const herald = new HeraldClient({
    transport: params.get('transport') || 'auto',
    token: params.get('token') || undefined,
    tenant: params.get('tenant') || undefined,
  });
  window.herald = herald;
  herald.on('open', (e) => { status.textContent = 'connected'; status.dataset.transport = e.transport; });
  herald.on('close', (e) => {
    window.heraldCloseCodes.push(e.code);
    status.textContent = 'closed (' + e.code + ')' + (e.willReconnect ? ' - reconnecting' : '');
  });
  herald.on('gap', (gap) => {
    window.heraldGaps.push(gap);
    const item = document.createElement('li');
    item.className = 'gap';
    item.textContent = 'Some announcements of ' + gap.audience + ' may have been missed';
    list.prepend(item);
  });
  herald.subscribe(audiences, (frame) => {
    const item = document.createElement('li');
    item.className = 'announcement';
    item.dataset.id = frame.id;
    item.dataset.seq = frame.seq;
    item.dataset.audience = frame.audience;
    const body = frame.text !== undefined ? frame.text : JSON.stringify(frame.json ?? frame.binary);
    item.textContent = body;
    const meta = document.createElement('code');
    meta.textContent = '  [' + frame.audience + ' #' + frame.seq + ']';
    item.appendChild(meta);
    list.prepend(item);
  });
</script>
</body>
</html>
)HTML";

}  // namespace herald::channels
