// The Node.js peer: the canonical `ws` broadcast server. Subscribers connect
// to ws://HOST:PORT/sub; POST /pub sends the request body to every open
// client, the way the ws README's broadcast example does.
//   node ws_broadcast_server.js PORT
'use strict';
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 18380);
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/pub') {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(body);
    }
    res.writeHead(202).end();
  });
});
const wss = new WebSocketServer({ server, path: '/sub', perMessageDeflate: false });
server.listen(port, '127.0.0.1', () => console.log(`ws peer listening on ${port}`));
