/**
 * Strategic-merge metadata for the kinds the apiserver serves: which lists merge element by
 * element, and by which key. Everything not listed here is replaced as a whole, as in a JSON merge
 * patch.
 *
 * Mirrors the `patchStrategy` / `patchMergeKey` struct tags of k8s.io/api `core/v1/types.go` and
 * apimachinery `pkg/apis/meta/v1/types.go` (ObjectMeta.finalizers, ownerReferences), which
 * upstream reads by reflection (`strategicpatch.NewPatchMetaFromStruct`); only the fields of
 * Pod and Node that carry such tags. Server-side apply reads the same table for its list types
 * (the `+listType=map|set` / `+listMapKey` tags, which agree with these for the served kinds):
 * a merged list with a key is associative, one without is a set, every other list is atomic.
 */

export interface PatchMeta {
  /** A list merged element by element (patchStrategy merge) instead of replaced. */
  merge?: boolean;
  /** The element field identifying list elements (patchMergeKey); absent for lists of scalars. */
  mergeKey?: string;
  /**
   * Server-side apply's key for an associative list when it is more than the merge key
   * (`+listMapKey` tags: ports are keyed by containerPort and protocol), with the defaults a
   * missing key field takes (protocol TCP), as structured-merge-diff reads them from the schema.
   */
  listMapKeys?: string[];
  keyDefaults?: Record<string, unknown>;
  /** The fields of this object, or of each element of this list. */
  fields?: Record<string, PatchMeta>;
}

const byKey = (mergeKey: string, fields?: Record<string, PatchMeta>): PatchMeta => ({
  merge: true,
  mergeKey,
  fields,
});

const OBJECT_META: PatchMeta = {
  fields: { finalizers: { merge: true }, ownerReferences: byKey('uid') },
};

const CONTAINER: Record<string, PatchMeta> = {
  env: byKey('name'),
  ports: {
    ...byKey('containerPort'),
    listMapKeys: ['containerPort', 'protocol'],
    keyDefaults: { protocol: 'TCP' },
  },
  volumeMounts: byKey('mountPath'),
  volumeDevices: byKey('devicePath'),
};

export const POD_PATCH_META: PatchMeta = {
  fields: {
    metadata: OBJECT_META,
    spec: {
      fields: {
        containers: byKey('name', CONTAINER),
        initContainers: byKey('name', CONTAINER),
        ephemeralContainers: byKey('name', CONTAINER),
        volumes: byKey('name'),
        imagePullSecrets: byKey('name'),
        hostAliases: byKey('ip'),
        topologySpreadConstraints: {
          ...byKey('topologyKey'),
          listMapKeys: ['topologyKey', 'whenUnsatisfiable'],
        },
        resourceClaims: byKey('name'),
        schedulingGates: byKey('name'),
      },
    },
    status: {
      fields: {
        conditions: byKey('type'),
        podIPs: byKey('ip'),
        hostIPs: byKey('ip'),
      },
    },
  },
};

export const NODE_PATCH_META: PatchMeta = {
  fields: {
    metadata: OBJECT_META,
    spec: { fields: { podCIDRs: { merge: true } } },
    status: { fields: { conditions: byKey('type'), addresses: byKey('type') } },
  },
};

export const PATCH_META: Record<string, PatchMeta> = { Pod: POD_PATCH_META, Node: NODE_PATCH_META };

/** The metadata every kind shares, for kinds without a table of their own here. */
export const OBJECT_PATCH_META: PatchMeta = { fields: { metadata: OBJECT_META } };
