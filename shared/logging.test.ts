import { redactCredentials } from './logging.js';

describe('redactCredentials', () => {
  it.each([
    [
      'GET /api/v1/namespaces/default/pods?access_token=SECRET user=- code=401 1ms',
      'GET /api/v1/namespaces/default/pods?access_token=<masked> user=- code=401 1ms',
    ],
    [
      'GET /exec?command=ls&ACCESS_TOKEN=SECRET&stdout=1',
      'GET /exec?command=ls&ACCESS_TOKEN=<masked>&stdout=1',
    ],
    ['headers {"authorization":"Bearer SECRET","x":1}', 'headers {"authorization":"Bearer <masked>","x":1}'],
    ['Authorization: Basic SECRET', 'Authorization: Basic <masked>'],
    [
      'Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.U0VDUkVU, v5.channel.k8s.io',
      'Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<masked>, v5.channel.k8s.io',
    ],
    ['token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.SECRET-_x end', 'token <masked-jwt> end'],
  ])('masks %s', (line, masked) => {
    expect(redactCredentials(line)).toBe(masked);
  });

  it('leaves lines without credentials alone', () => {
    const line = 'POST /api/v1/namespaces/default/pods/demo/exec?command=ls user=admin code=101 3ms';
    expect(redactCredentials(line)).toBe(line);
  });
});
