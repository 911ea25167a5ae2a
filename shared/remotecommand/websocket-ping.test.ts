/**
 * The channel client's keep-alive pings (client-go's remotecommand WebSocket executor pings every
 * 5 s so that idle sessions survive proxies) and its upgrade report (kexec -v).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { runChannelClient, type UpgradeResponse } from './websocket-client.js';

it('pings at its interval while the session is idle, and reports the 101 with its headers and subprotocol', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'v5.channel.k8s.io' });
  let pings = 0;
  wss.on('headers', (headers) => headers.push('Audit-Id: test-id'));
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('ping', () => {
        // After three pings of an otherwise silent session, the command ends with Success.
        if (++pings !== 3) return;
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('{"metadata":{},"status":"Success"}')]));
        ws.close(1000);
      });
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  let upgrade: UpgradeResponse | undefined;
  try {
    const res = await runChannelClient({
      url: `http://127.0.0.1:${port}/exec`,
      protocols: ['v5.channel.k8s.io'],
      pingIntervalMs: 20,
      onUpgrade: (u) => (upgrade = u),
    });
    expect(res.exitCode).toBe(0);
    expect(pings).toBe(3);
    expect(upgrade).toMatchObject({ statusCode: 101, protocol: 'v5.channel.k8s.io' });
    expect(upgrade!.headers['audit-id']).toBe('test-id');
  } finally {
    wss.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
