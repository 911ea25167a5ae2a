/**
 * Content negotiation: which representation of a response the client asked for in `Accept`.
 * Besides plain JSON, clients ask for a server-side rendering by media type parameters:
 * `application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get), `as=PartialObjectMetadata` /
 * `as=PartialObjectMetadataList` (metadata-only clients) and, on /api and /apis,
 * `as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io` (aggregated discovery).
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/negotiation/negotiate.go` (NegotiateOutputMediaType:
 * the offers are tried in the client's order, the first the server can produce wins, none → 406)
 * and `handlers/response.go` (targetEncodingForTransform). Quality values are not weighed: every
 * client that sends these headers lists its preferences in order. YAML and protobuf are not served.
 */
import { StatusError } from '../../shared/status.js';

/** A server-side rendering of the response object; undefined `as` means the object itself. */
export interface Target {
  as?: 'Table' | 'PartialObjectMetadata' | 'PartialObjectMetadataList' | 'APIGroupDiscoveryList';
  /** The group/version of the rendering: `meta.k8s.io/v1`, `apidiscovery.k8s.io/v2` … */
  groupVersion?: string;
}

interface Offer {
  type: string;
  params: Record<string, string>;
}

const TRANSFORMS: Record<string, { group: string; versions: string[] }> = {
  Table: { group: 'meta.k8s.io', versions: ['v1', 'v1beta1'] },
  PartialObjectMetadata: { group: 'meta.k8s.io', versions: ['v1', 'v1beta1'] },
  PartialObjectMetadataList: { group: 'meta.k8s.io', versions: ['v1', 'v1beta1'] },
  APIGroupDiscoveryList: { group: 'apidiscovery.k8s.io', versions: ['v2', 'v2beta1'] },
};

function parseAccept(header: string | undefined): Offer[] {
  if (!header?.trim()) return [{ type: '*/*', params: {} }];
  return header.split(',').map((part) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    const p: Record<string, string> = {};
    for (const kv of params) {
      const i = kv.indexOf('=');
      if (i > 0) p[kv.slice(0, i).trim().toLowerCase()] = kv.slice(i + 1).trim();
    }
    return { type: type.toLowerCase(), params: p };
  });
}

/**
 * The first offer this server can produce. `allowed` lists the renderings that make sense for
 * this response (a Table of a list or an object, discovery only on /api and /apis).
 */
export function negotiate(
  accept: string | undefined,
  allowed: ReadonlyArray<NonNullable<Target['as']>>,
): Target {
  const offers = parseAccept(accept);
  for (const o of offers) {
    if (!['application/json', 'application/*', '*/*'].includes(o.type)) continue;
    const as = o.params.as;
    if (!as) return {};
    const t = TRANSFORMS[as];
    if (!t || !allowed.includes(as as NonNullable<Target['as']>)) continue;
    if (o.params.g !== t.group || !t.versions.includes(o.params.v ?? '')) continue;
    return { as: as as Target['as'], groupVersion: `${t.group}/${o.params.v}` };
  }
  throw StatusError.of(406, `only the following media types are accepted: application/json`, 'NotAcceptable');
}

/** The Content-Type of a response in this rendering. */
export function contentType(t: Target): string {
  if (!t.as) return 'application/json';
  const [g, v] = t.groupVersion!.split('/');
  return `application/json;g=${g};v=${v};as=${t.as}`;
}
