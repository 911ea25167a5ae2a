import { failureStatus } from '../shared/status.js';
import {
  ApiStatusError,
  ExitCodeError,
  UsageError,
  exitCodeOf,
  formatError,
  formatStatus,
  statusFromResponse,
} from './errors.js';

describe('kubectl-style error messages', () => {
  it('formats a Status with a reason', () => {
    const s = failureStatus(404, 'pods "x" not found', 'NotFound', { name: 'x', kind: 'pods' });
    expect(formatError(new ApiStatusError(s))).toBe('Error from server (NotFound): pods "x" not found');
    expect(exitCodeOf(new ApiStatusError(s))).toBe(1);
  });

  it('formats a Status without a reason', () => {
    expect(formatStatus(failureStatus(502, 'error dialing backend: refused', ''))).toBe(
      'Error from server: error dialing backend: refused',
    );
  });

  it('formats Unauthorized the way kubectl does', () => {
    expect(formatStatus(failureStatus(401, 'Unauthorized'))).toBe(
      'error: You must be logged in to the server (Unauthorized)',
    );
  });

  it('formats any error carrying a failure Status (the channel client handshake error)', () => {
    const err = Object.assign(new Error('x'), {
      status: failureStatus(403, 'pods "demo" is forbidden: …', 'Forbidden'),
      httpCode: 403,
    });
    expect(formatError(err)).toBe('Error from server (Forbidden): pods "demo" is forbidden: …');
  });

  it('formats plain errors with error:', () => {
    expect(formatError(new Error('Get "http://127.0.0.1:1/api": connect ECONNREFUSED 127.0.0.1:1'))).toBe(
      'error: Get "http://127.0.0.1:1/api": connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(formatError(new Error('error: already prefixed'))).toBe('error: already prefixed');
    expect(formatError('boom')).toBe('error: boom');
  });

  it('formats usage errors with a help pointer', () => {
    expect(
      formatError(new UsageError('you must specify at least one command for the container', 'kexec exec')),
    ).toBe(
      "error: you must specify at least one command for the container\nSee 'kexec exec -h' for help and examples",
    );
  });

  it('reports a remote exit code and keeps it', () => {
    const err = new ExitCodeError(3);
    expect(formatError(err)).toBe('command terminated with exit code 3');
    expect(exitCodeOf(err)).toBe(3);
  });
});

describe('statusFromResponse', () => {
  const get = { method: 'GET', resource: 'pods', name: 'demo' };

  it('keeps the Status the server sent', () => {
    const body = JSON.stringify(failureStatus(404, 'pods "demo" not found', 'NotFound'));
    expect(statusFromResponse(404, body, 'application/json', get)).toMatchObject({
      reason: 'NotFound',
      message: 'pods "demo" not found',
      code: 404,
    });
  });

  it('synthesises one for an unstructured body, as client-go does', () => {
    expect(formatStatus(statusFromResponse(404, '404 page not found', 'text/plain', get))).toBe(
      'Error from server (NotFound): the server could not find the requested resource (get pods demo)',
    );
    expect(formatStatus(statusFromResponse(500, 'kaboom', 'text/plain', get))).toBe(
      'Error from server (InternalError): an error on the server ("kaboom") has prevented the request from succeeding (get pods demo)',
    );
    expect(formatStatus(statusFromResponse(418, '', undefined, get))).toBe(
      'Error from server: the server responded with the status code 418 but did not return more information (get pods demo)',
    );
  });

  it('treats JSON that is not a Status as unstructured', () => {
    expect(statusFromResponse(403, '{"hello":1}', 'application/json', get).reason).toBe('Forbidden');
  });
});
