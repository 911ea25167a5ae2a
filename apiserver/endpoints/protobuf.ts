/**
 * Request bodies in Kubernetes' protobuf encoding, for the few kinds that client-go's typed
 * clients send that way to this server: Namespace (`kubectl create namespace`),
 * SelfSubjectAccessReview (`kubectl auth can-i`) and SelfSubjectReview (`kubectl auth whoami`).
 * Any other kind in protobuf is a 415, as upstream answers for kinds without a protobuf form.
 *
 * The envelope and messages mirror k8s.io/apimachinery `pkg/runtime/serializer/protobuf`
 * (the 4-byte magic `k8s\0`, then a runtime.Unknown: typeMeta = 1, raw = 2) and the field numbers
 * of upstream's `generated.proto` files (meta/v1 ObjectMeta, core/v1 Namespace,
 * authorization/v1 and authentication/v1), reduced to the fields the lab reads; unknown fields
 * are skipped, as protobuf does. Decoded with protobufjs.
 */
import protobuf from 'protobufjs';
import { StatusError } from '../../shared/status.js';

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

const PROTO = `
syntax = "proto2";
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown { optional TypeMeta typeMeta = 1; optional bytes raw = 2; optional string contentEncoding = 3; optional string contentType = 4; }
message ObjectMeta {
  optional string name = 1; optional string generateName = 2; optional string namespace = 3;
  optional string uid = 5; optional string resourceVersion = 6;
  map<string, string> labels = 11; map<string, string> annotations = 12; repeated string finalizers = 14;
}
message NamespaceSpec { repeated string finalizers = 1; }
message Namespace { optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2; }
message ResourceAttributes {
  optional string namespace = 1; optional string verb = 2; optional string group = 3; optional string version = 4;
  optional string resource = 5; optional string subresource = 6; optional string name = 7;
}
message NonResourceAttributes { optional string path = 1; optional string verb = 2; }
message SelfSubjectAccessReviewSpec { optional ResourceAttributes resourceAttributes = 1; optional NonResourceAttributes nonResourceAttributes = 2; }
message SelfSubjectAccessReview { optional ObjectMeta metadata = 1; optional SelfSubjectAccessReviewSpec spec = 2; }
message SelfSubjectReview { optional ObjectMeta metadata = 1; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;

/** The message type of each kind this server accepts in protobuf, by `apiVersion/kind`. */
const KINDS: Record<string, string> = {
  'v1/Namespace': 'Namespace',
  'authorization.k8s.io/v1/SelfSubjectAccessReview': 'SelfSubjectAccessReview',
  'authentication.k8s.io/v1/SelfSubjectReview': 'SelfSubjectReview',
};

function unsupported(what: string): StatusError {
  return StatusError.of(
    415,
    `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${what} is not accepted as protobuf)`,
    'UnsupportedMediaType',
  );
}

/** Decodes a protobuf body into the object's JSON form (kind and apiVersion set). */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw StatusError.of(
      400,
      'provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]',
      'BadRequest',
    );
  }
  let unknown: { typeMeta?: { apiVersion?: string; kind?: string }; raw?: Uint8Array };
  try {
    unknown = root
      .lookupType('Unknown')
      .toObject(root.lookupType('Unknown').decode(body.subarray(MAGIC.length)));
  } catch (err) {
    throw StatusError.of(
      400,
      `unable to decode the protobuf envelope: ${(err as Error).message}`,
      'BadRequest',
    );
  }
  const apiVersion = unknown.typeMeta?.apiVersion ?? '';
  const kind = unknown.typeMeta?.kind ?? '';
  const type = KINDS[`${apiVersion}/${kind}`];
  if (!type) throw unsupported(`${apiVersion} ${kind}`.trim() || 'an object without kind');
  try {
    const message = root.lookupType(type);
    const obj = message.toObject(message.decode(unknown.raw ?? new Uint8Array()), { defaults: false });
    return { kind, apiVersion, metadata: {}, ...obj };
  } catch (err) {
    throw StatusError.of(400, `unable to decode ${kind}: ${(err as Error).message}`, 'BadRequest');
  }
}
