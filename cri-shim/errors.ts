/**
 * The runtime's typed error: a gRPC status code plus a lower-case message, as containerd's CRI
 * plugin returns them (`errdefs` → codes.NotFound, FailedPrecondition, …). The gRPC layer sends
 * `code` and `message` as they are; everything else becomes INTERNAL.
 */
import grpc from '@grpc/grpc-js';
import { errorMessage } from '../shared/logging.js';

export class CriError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'CriError';
  }
  static notFound(message: string): CriError {
    return new CriError(grpc.status.NOT_FOUND, message);
  }
  static invalid(message: string): CriError {
    return new CriError(grpc.status.INVALID_ARGUMENT, message);
  }
  static precondition(message: string): CriError {
    return new CriError(grpc.status.FAILED_PRECONDITION, message);
  }
  static exhausted(message: string): CriError {
    return new CriError(grpc.status.RESOURCE_EXHAUSTED, message);
  }
  static internal(message: string): CriError {
    return new CriError(grpc.status.INTERNAL, message);
  }
  static unavailable(message: string): CriError {
    return new CriError(grpc.status.UNAVAILABLE, message);
  }
  static unimplemented(message: string): CriError {
    return new CriError(grpc.status.UNIMPLEMENTED, message);
  }
}

/** Any thrown value as a gRPC error object for a unary callback. */
export function toGrpcError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof CriError) return { code: err.code, details: err.message, message: err.message };
  const message = errorMessage(err);
  return { code: grpc.status.INTERNAL, details: message, message };
}
