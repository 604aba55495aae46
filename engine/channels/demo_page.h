// The page heraldd serves on GET / of the client port: the quickest way to
// see a broadcast arrive in a browser, and the page the headless-Chromium
// test drives. It subscribes over WebSocket to the audiences in its own query
// string (?audience=a&audience=b) and lists every frame it receives.
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
  li { margin: .4rem 0; padding: .4rem .6rem; background: #f3f3f3; border-radius: 4px; }
  code { color: #555; }
</style>
</head>
<body>
<h1>Herald live</h1>
<p>Audiences: <code id="audiences"></code> &middot; <span id="status">connecting</span></p>
<ol id="messages"></ol>
<script>
  const params = new URLSearchParams(location.search);
  if (!params.has('audience')) params.append('audience', 'lineup.rock-am-ring');
  document.getElementById('audiences').textContent = params.getAll('audience').join(', ');
  const status = document.getElementById('status');
  const list = document.getElementById('messages');
  let lastSeq = {};
  window.heraldCloseCodes = [];
  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/ws?' + params;
    const ws = new WebSocket(url);
    ws.onopen = () => { status.textContent = 'connected'; };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      lastSeq[frame.audience] = frame.seq;
      const item = document.createElement('li');
      item.className = 'announcement';
      item.dataset.id = frame.id;
      item.dataset.seq = frame.seq;
      const body = frame.text !== undefined ? frame.text : JSON.stringify(frame.json ?? frame.binary);
      item.textContent = body;
      const meta = document.createElement('code');
      meta.textContent = '  [' + frame.audience + ' #' + frame.seq + ']';
      item.appendChild(meta);
      list.prepend(item);
    };
    ws.onclose = (event) => {
      window.heraldCloseCodes.push(event.code);  // every close, for tests and debugging
      status.textContent = 'closed (' + event.code + ') - reconnecting';
      setTimeout(connect, 1000);
    };
  }
  connect();
</script>
</body>
</html>
)HTML";

}  // namespace herald::channels
