/**
 * Small ObjectMeta helpers shared by the registries: server timestamps, generated names, and the
 * untyped form of list items.
 *
 * Mirrors apimachinery `pkg/apis/meta/v1/time.go` (RFC 3339 at second precision) and
 * k8s.io/apiserver `pkg/storage/names/generate.go` (SimpleNameGenerator: five random characters
 * from an alphabet without vowels).
 */
import { randomBytes } from 'node:crypto';
import type { KubeObject } from '../../shared/api/core-v1.js';

const GENERATED_SUFFIX = 5;

/** List items carry no kind / apiVersion, as upstream encodes typed lists. */
export function untyped(obj: KubeObject): KubeObject {
  const { kind: _k, apiVersion: _a, ...rest } = obj;
  return rest as KubeObject;
}

/** RFC 3339 at second precision, as metav1.Time marshals. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function generatedName(base: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return base + [...randomBytes(GENERATED_SUFFIX)].map((b) => alphabet[b % alphabet.length]).join('');
}
