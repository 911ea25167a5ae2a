import { failureStatus, reasonForCode, StatusError, toStatus } from './status.js';

describe('Status', () => {
  it('pairs codes and reasons as apimachinery does', () => {
    expect(reasonForCode(404)).toBe('NotFound');
    expect(reasonForCode(422)).toBe('Invalid');
    expect(reasonForCode(502)).toBe('');
  });

  it('omits the reason for codes that have none', () => {
    const s = failureStatus(502, 'bad gateway');
    expect(s).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'bad gateway',
      code: 502,
    });
  });

  it('turns arbitrary errors into InternalError and keeps StatusErrors', () => {
    expect(toStatus(new Error('boom'))).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(toStatus(StatusError.of(404, 'pods "x" not found'))).toMatchObject({
      code: 404,
      reason: 'NotFound',
    });
  });
});
